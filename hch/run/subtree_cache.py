"""Single-flight memo of whole subtrees: an identical question at the same depth under the
same policy (and context) is expanded once, even when it is asked concurrently."""

from __future__ import annotations

import anyio

from hch.record.trace import Trace
from hch.workspace import Status, SubAnswer

SubtreeKey = tuple[str, str, int, str]
"""(policy fingerprint, normalized question, depth, context hash)."""


class Flight:
    """One expansion, finished or in flight; later askers wait on `done`.

    A cache keeps one per workspace for as long as it lives, so a flight is kept small: slots, and
    its result held as a plain tuple (a `SubAnswer` model is ~400 bytes; `result` rebuilds one).
    """

    __slots__ = ("_answer", "_event", "_finished", "node", "trace")

    def __init__(self, result: SubAnswer | None = None, node: int | None = None, trace: Trace | None = None) -> None:
        self._answer: tuple[str, str, Status] | None = None
        self.result = result
        self.node = node
        """The id of the subtree's root workspace in `trace`."""
        self.trace = trace
        """The trace the subtree was recorded in (a shared cache may span runs)."""
        # The event is made only when someone waits: most flights never have a waiter, and an
        # anyio event costs ~1 KB and ~7 µs, per workspace of a run (measured by bench_memory.py).
        self._event: anyio.Event | None = None
        self._finished = False

    @property
    def result(self) -> SubAnswer | None:
        """The subtree's answer, once done; None if its expansion was abandoned."""
        if self._answer is None:
            return None
        question, answer, status = self._answer
        return SubAnswer(question=question, answer=answer, status=status)

    @result.setter
    def result(self, value: SubAnswer | None) -> None:
        self._answer = None if value is None else (value.question, value.answer, value.status)

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
