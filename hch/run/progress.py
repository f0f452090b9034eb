"""Live counters of a run, for a progress display: the engine updates them as it goes.

Pass a `Progress` to `hch.answer(..., progress=...)` and read it at any time (from another
thread too: the fields are plain integers), or give it a `listener` called after each change.
A policy that retries or waits (an LLM client backing off) reports it with `retrying(seconds)`;
the engine makes the run's counters the current ones while its policies act.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class Progress:
    """What a run has done so far and is doing now."""

    nodes: int = 0
    """Workspaces started."""
    finished: int = 0
    """Workspaces that ended (answered, guessed or failed)."""
    calls: int = 0
    """Policy calls started (cache hits not included)."""
    in_flight: int = 0
    """Policy calls running now."""
    cache_hits: int = 0
    """Policy calls served by the call cache."""
    retries: int = 0
    """Retries the policies reported (e.g. an LLM request retried after a 429)."""
    wait_until: float = 0.0
    """`time.monotonic()` until which a reported wait lasts (0: none reported)."""
    listener: Callable[[Progress], None] | None = field(default=None, repr=False, compare=False)
    """Called after each change (keep it fast: it runs inside the engine)."""

    def changed(self) -> None:
        if self.listener is not None:
            self.listener(self)

    def node_started(self) -> None:
        self.nodes += 1
        self.changed()

    def node_ended(self) -> None:
        self.finished += 1
        self.changed()

    def call_started(self) -> None:
        self.calls += 1
        self.in_flight += 1
        self.changed()

    def call_ended(self) -> None:
        self.in_flight -= 1
        self.changed()

    def cache_hit(self) -> None:
        self.cache_hits += 1
        self.changed()

    def waiting(self) -> float:
        """Seconds left of the longest wait reported (0 when none is going)."""
        return max(0.0, self.wait_until - time.monotonic())


CURRENT: ContextVar[Progress | None] = ContextVar("hch_progress", default=None)
"""The progress of the run whose policy is acting (set by the engine)."""


def retrying(wait: float) -> None:
    """Report from inside a policy's `act`: a retry will start after `wait` seconds.

    Does nothing outside a run (a policy called directly).
    """
    progress = CURRENT.get()
    if progress is None:
        return
    progress.retries += 1
    progress.wait_until = max(progress.wait_until, time.monotonic() + max(0.0, wait))
    progress.changed()
