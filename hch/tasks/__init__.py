"""Built-in task suites: seeded generators of questions with gold answers and required depths.

Arithmetic, and the five algorithmic tasks of Christiano, Shlegeris and Amodei (2018). A task
instance's facts are the run's shared context, so any policy (an expert, an LLM, a person) can
attempt the same questions. Each has a matching expert in `hch.experts`.
"""

from __future__ import annotations

from hch.errors import HchError
from hch.tasks import (
    arithmetic,
    permutation_powering,
    sequential_assignments,
    shortest_path,
    union_find,
    wildcard_search,
)
from hch.tasks.base import Task

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


__all__ = ["TASKS", "Task", "get_task"]
