"""Single-flight memo of whole subtrees: an identical question at the same depth under the
same policy (and context) is expanded once, even when it is asked concurrently."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from hch.record.trace import Trace
from hch.workspace import SubAnswer

SubtreeKey = tuple[str, str, int, str]
"""(policy fingerprint, normalized question, depth, context hash)."""


@dataclass
class Flight:
    """One expansion, finished or in flight; later askers wait on `done`."""

    result: SubAnswer | None = None
    """The subtree's answer, once done; None if its expansion was abandoned."""
    node: int | None = None
    """The id of the subtree's root workspace in `trace`."""
    trace: Trace | None = None
    """The trace the subtree was recorded in (a shared cache may span runs)."""
    # The event is made only when someone waits: most flights never have a waiter, and an
    # anyio event costs ~1 KB and ~7 µs, per workspace of a run (measured by bench_memory.py).
    _event: anyio.Event | None = field(default=None, repr=False, compare=False)
    _finished: bool = field(default=False, repr=False, compare=False)

    @property
    def done(self) -> anyio.Event:
        """Set once the expansion finished or was abandoned."""
        if self._event is None:
            self._event = anyio.Event()
            if self._finished:
                self._event.set()
        return self._event

    def set_done(self) -> None:
        """Mark the flight finished and wake its waiters, if any."""
        self._finished = True
        if self._event is not None:
            self._event.set()


class SubtreeCache:
    """Maps subtree keys to flights. Share one across runs (e.g. a depth sweep) to reuse work."""

    def __init__(self) -> None:
        self._flights: dict[SubtreeKey, Flight] = {}

    def __contains__(self, key: SubtreeKey) -> bool:
        return key in self._flights

    def __len__(self) -> int:
        return len(self._flights)

    def claim(self, key: SubtreeKey) -> tuple[Flight, bool]:
        """The flight for `key` and whether the caller owns it (and so must expand it)."""
        flight = self._flights.get(key)
        if flight is not None:
            return flight, False
        flight = self._flights[key] = Flight()
        return flight, True

    def finish(self, flight: Flight, result: SubAnswer, node: int, trace: Trace) -> None:
        """Publish an owner's result and wake every waiter."""
        flight.result, flight.node, flight.trace = result, node, trace
        flight.set_done()

    def abandon(self, key: SubtreeKey, flight: Flight) -> None:
        """Forget an expansion that did not finish (cancelled), so a waiter can redo it."""
        if self._flights.get(key) is flight:
            del self._flights[key]
        flight.set_done()
