"""Starting a subquestion's task at once, depth first, as Python 3.12's eager tasks do (on 3.11 too).

asyncio runs new tasks in the order they were made: a node that asks four subquestions makes four
tasks, each of those makes four more, and a tree whose policy answers at once is expanded breadth
first, every node of it alive (waiting for its children) at the same time: a bare task-group recursion
over 10^6 nodes peaks at 1.3 GB. Running each new task's first step at once, inside the step of the
task that made it, expands such a tree depth first: a subtree that needs nothing slow is finished (and
freed) before its next sibling starts, so what is alive is the work really in flight. A child that
waits for something (an LLM, a person, a timer) suspends as before, and its siblings start then:
concurrency is unchanged, only the order of instant work differs.

Python 3.11 has no eager tasks, so `start` runs the step asyncio just scheduled for the new task
(the last entry of the loop's ready queue, checked to be that task's step), with the current task
swapped out meanwhile, as 3.12's eager start does. Where the loop is not asyncio's own (uvloop, trio
through anyio) or the ready queue does not end with the task's step, the task simply starts when the
loop reaches it. Nesting is bounded (`MAX_NESTING` levels), so a deep chain never exhausts the stack.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

MAX_NESTING = 24
"""Tasks started inside other tasks' first steps, at most, on one thread's stack."""

_enter_task = getattr(asyncio.tasks, "_enter_task", None)
_leave_task = getattr(asyncio.tasks, "_leave_task", None)
_local = threading.local()


def create_task(group: asyncio.TaskGroup, coro: Coroutine[Any, Any, None]) -> None:
    """`group.create_task(coro)`, with the task's first step run at once when that can be done safely.

    A task that finishes within that step is handed back to the group at once (as Python 3.12's task
    groups do for eager tasks), so neither it nor its parent waits for another loop iteration. One that
    failed is reported to the group by the loop, as without eager starts, so its siblings still start.
    """
    if getattr(group, "_aborting", False):  # a sibling failed in its first step: the group is shutting down
        coro.close()
        return
    task = group.create_task(coro)
    done = getattr(group, "_on_task_done", None)
    if done is None or not task.remove_done_callback(done):
        return  # not the task group this was written against: leave the task to the loop
    try:
        start(task)
    finally:
        if task.done() and not task.cancelled() and task.exception() is None:
            done(task)  # what the callback would have done one iteration later
        else:  # still going, or failed: the group hears of it from the loop, as usual (siblings start first)
            task.add_done_callback(done)


def start(task: asyncio.Task[Any]) -> None:
    """Run `task`'s first step now if that can be done safely (see the module's text), else leave it
    for the loop. Call it right after creating the task."""
    nesting: int = getattr(_local, "nesting", 0)
    if nesting >= MAX_NESTING or _enter_task is None or _leave_task is None:
        return
    loop = task.get_loop()
    ready = getattr(loop, "_ready", None)
    if not ready:
        return
    handle = ready[-1]
    if getattr(getattr(handle, "_callback", None), "__self__", None) is not task:
        return
    parent = asyncio.current_task(loop)
    if parent is None:
        return
    ready.pop()
    _leave_task(loop, parent)
    _local.nesting = nesting + 1
    try:
        handle._run()
    finally:
        _local.nesting = nesting
        _enter_task(loop, parent)
