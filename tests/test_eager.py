"""Subquestions start depth first: a new task's first step runs at once, in its own task."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest
from helpers import FunctionPolicy

import hch
from hch.errors import NodeFailed
from hch.limits import Limits
from hch.run import eager
from hch.workspace import Answer, Ask, Workspace


def test_an_instant_tree_is_expanded_depth_first() -> None:
    order: list[str] = []

    async def tree(w: Workspace) -> Ask | Answer:
        order.append(w.question)
        if w.depth > 0 and not w.steps:
            return Ask(questions=[w.question + "a", w.question + "b"])
        return Answer(answer="done")

    hch.answer_sync("q", depth=2, policy=FunctionPolicy(tree))
    firsts = [q for i, q in enumerate(order) if q not in order[:i]]
    assert firsts == ["q", "qa", "qaa", "qab", "qb", "qba", "qbb"]  # qa's subtree before qb starts


def test_a_child_that_waits_lets_its_siblings_start() -> None:
    """Concurrency is unchanged: the first child blocks until the second has started."""
    started = anyio.Event()

    async def policy(w: Workspace) -> Ask | Answer:
        if w.question == "root" and not w.steps:
            return Ask(questions=["first", "second"])
        if w.question == "first":
            await started.wait()  # would hang for ever if "second" could not start meanwhile
        if w.question == "second":
            started.set()
        return Answer(answer=w.question)

    assert hch.answer_sync("root", depth=1, policy=FunctionPolicy(policy)).status == "ok"


def test_each_child_runs_its_first_step_as_its_own_task() -> None:
    """anyio primitives that belong to a task (a limiter's borrower, a cancel scope) see the child's."""
    limiter = anyio.CapacityLimiter(8)
    tasks: dict[str, asyncio.Task[object] | None] = {}

    async def policy(w: Workspace) -> Ask | Answer:
        if w.depth > 0 and not w.steps:
            return Ask(questions=[w.question + "a", w.question + "b"])
        async with limiter:  # the same borrower twice would be an error
            tasks[w.question] = asyncio.current_task()
            with anyio.move_on_after(5):
                await anyio.sleep(0)
        return Answer(answer="done")

    hch.answer_sync("q", depth=2, policy=FunctionPolicy(policy), limits=Limits(node_timeout=30))
    leaves = [tasks[q] for q in ("qaa", "qab", "qba", "qbb")]
    assert len({id(task) for task in leaves}) == 4


def test_a_deep_chain_never_runs_out_of_stack() -> None:
    async def chain(w: Workspace) -> Ask | Answer:
        if w.depth > 0 and not w.steps:
            return Ask(questions=[f"{w.depth - 1}"])
        return Answer(answer="done")

    depth = 3000  # far past the interpreter's recursion limit were every step nested
    result = hch.answer_sync(f"{depth}", depth=depth, policy=FunctionPolicy(chain), limits=Limits(max_nodes=depth + 1))
    assert result.summary.nodes == depth + 1 and result.status == "ok"
    assert eager.MAX_NESTING < 100


def test_a_failure_in_a_first_step_still_fails_the_run_fast(tmp_path: Path) -> None:
    async def policy(w: Workspace) -> Ask | Answer:
        if w.question == "root" and not w.steps:
            return Ask(questions=["bad", "fine"])
        if w.question == "bad":
            raise ValueError("broken")
        return Answer(answer="ok")

    with pytest.raises(NodeFailed, match="broken"):
        hch.answer_sync("root", depth=1, policy=FunctionPolicy(policy), fail_fast=True, trace_path=tmp_path / "t.json")
    assert hch.answer_sync("root", depth=1, policy=FunctionPolicy(policy)).status == "ok"  # without: the node errs


def test_the_anyio_task_groups_used_under_trio_give_the_same_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under trio the engine uses anyio's task groups (no eager starts); the run is the same."""
    from hch.run import engine

    native = hch.answer_sync("What is (1 + 2) * (1 + 2) + (1 + 2) * (5 - 1)?", depth=3)
    monkeypatch.setattr(engine, "_under_asyncio", lambda: False)
    portable = hch.answer_sync("What is (1 + 2) * (1 + 2) + (1 + 2) * (5 - 1)?", depth=3)
    assert portable.answer == native.answer
    assert portable.summary.model_dump(exclude={"wall_time"}) == native.summary.model_dump(exclude={"wall_time"})
    questions = sorted(d["question"] for _, d in portable.trace.workspaces())
    assert questions == sorted(d["question"] for _, d in native.trace.workspaces())
