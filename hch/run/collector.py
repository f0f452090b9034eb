"""Paces CPython's cyclic garbage collector while runs go, so it stops re-walking the trace.

A trace is a networkx graph of attribute dicts that stays alive and grows for the whole run.
With the default thresholds (700, 10, 10) the collector's young collections promote it into
the oldest generation and every full collection walks all of it again: about half the time
of an instant 32k-workspace run went to the collector (benchmarks/bench_overhead.py).

While at least one run is going, `paced()` raises the thresholds to at least `THRESHOLDS`
and restores the process's own values when the last run ends. Measured alternative:
`gc.freeze()` of the recorded trace every 1,000 nodes saved as much time, but a freeze also
keeps every other unreachable cycle in the process uncollected until the run ends (hours in
an LLM run) and undoes an application's own `gc.freeze()`; higher thresholds only delay
collections, so nothing is kept longer than the next (rarer) collection.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (50_000, 50, 100)
"""Objects allocated before a young collection; young collections per middle one; middle per full."""

_runs = 0
_saved: tuple[int, ...] = ()
_raised: tuple[int, ...] = ()


@contextmanager
def paced() -> Iterator[None]:
    """Raise the collector's thresholds while the block runs (nests, and overlaps across runs)."""
    global _runs, _saved, _raised
    if _runs == 0:
        _saved = gc.get_threshold()
        # a threshold of 0 means the application switched automatic collection off: leave it so
        _raised = _saved if _saved[0] == 0 else tuple(map(max, _saved, THRESHOLDS))
        gc.set_threshold(*_raised)
    _runs += 1
    try:
        yield
    finally:
        _runs -= 1
        # restore unless the application changed the thresholds itself meanwhile (its choice wins)
        if _runs == 0 and gc.get_threshold() == _raised:
            gc.set_threshold(*_saved)
