"""Built-in task suites: seeded generators of questions with gold answers and required depths.

Arithmetic, and the five algorithmic tasks of Christiano, Shlegeris and Amodei (2018). A task
instance's facts are the run's shared context, so any policy (an expert, an LLM, a person) can
attempt the same questions. Each has a matching expert in `hch.experts`. With facts hidden
(`hch.run.facts`), H sees only the context's header line (`visible_context`) and the task's
environment answers its primitive questions (`oracle_answer`).
"""

from __future__ import annotations

from hch.errors import HchError, QuestionError
from hch.tasks import (
    arithmetic,
    permutation_powering,
    sequential_assignments,
    shortest_path,
    union_find,
    wildcard_search,
)
from hch.tasks.base import Task, header

TASKS: dict[str, Task] = {
    module.TASK.name: module.TASK
    for module in (arithmetic, permutation_powering, sequential_assignments, wildcard_search, shortest_path, union_find)
}
"""Every built-in task by name."""


def get_task(name: str) -> Task:
    """The task called `name` (underscores are accepted for dashes)."""
    task = TASKS.get(name.replace("_", "-"))
    if task is None:
        raise HchError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return task


def task_of(context: str) -> Task | None:
    """The task whose facts `context` holds (recognised by its header line), if any."""
    first = header(context).strip()
    return next((task for task in TASKS.values() if task.header and task.header == first), None)


def visible_context(context: str) -> str:
    """What H sees of `context` when facts are hidden: the task's header line, no fact.

    A context that is no task's facts has no environment to answer look-ups: a `QuestionError`."""
    task = task_of(context)
    if task is None or task.oracle is None:
        with_facts = ", ".join(t.name for t in TASKS.values() if t.oracle is not None)
        raise QuestionError(
            "facts hidden needs a task's facts as the context (its first line names the task: "
            f"{with_facts}); this question has none, so use facts shown (--facts shown)"
        )
    return task.header


def oracle_answer(context: str, question: str) -> str | None:
    """The environment's answer to a primitive question, read from the facts; None when the task
    does not answer `question` (it is not one of the task's primitive forms) or `context` is no task's."""
    task = task_of(context)
    if task is None or task.oracle is None:
        return None
    return task.oracle(context, question)


__all__ = ["TASKS", "Task", "get_task", "oracle_answer", "task_of", "visible_context"]
