"""Where the node a policy is acting for sits in the tree, for display only.

A workspace deliberately carries no tree position (a node sees only its question, the
context and its own sub-answers, and the call cache keys on exactly that). A person at the
terminal still wants to know which node they are looking at; the engine publishes it here,
in a context variable, for the duration of each node. Policies must not let it change what
they decide, or cached calls would no longer be faithful.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Position:
    """A workspace's place in the run's trace."""

    node: int
    """The workspace's id in the trace (the `#N` of `hch ask`'s tree)."""
    level: int
    """How many delegations below the root it is (0 for the root)."""
    parent: int | None = None
    """The workspace that asked this question, None for the root."""
    step: int | None = None
    """The asker's step (0-based) in which it was asked."""
    order: int | None = None
    """Its place (0-based) among the questions of that step."""


POSITION: ContextVar[Position | None] = ContextVar("hch_position", default=None)


def current() -> Position | None:
    """The position of the node being acted for, or None outside an engine run."""
    return POSITION.get()


DEADLINE: ContextVar[float | None] = ContextVar("hch_deadline", default=None)
"""When the policy call being made times out, on the event loop's clock (`anyio.current_time()`), or
None without a timeout; for display only (a person at the prompt sees a countdown)."""


def deadline() -> float | None:
    """The current policy call's deadline on the event loop's clock, or None."""
    return DEADLINE.get()


RUN: ContextVar[str | None] = ContextVar("hch_run", default=None)
"""Which run (tree) the node being acted for belongs to: its trace path, or a random id for a run without
one. For assignment and display only (`hch serve` never gives one person two workspaces of a tree)."""


def run_id() -> str | None:
    """The current run's id (its trace path), or None outside an engine run."""
    return RUN.get()
