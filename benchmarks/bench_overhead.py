"""Engine overhead: µs per node of an instant policy expanding a full binary tree.

The floor is a bare `asyncio.gather` recursion of the same shape, timed in the same run.
Target: at most 3x the floor with tracing on (trace recorded and written to a file).

    python benchmarks/bench_overhead.py [--quick]
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
from _common import best_of, parser, verdict, write

import hch
from hch.limits import Limits
from hch.run.call_cache import CallCache
from hch.workspace import Answer, Ask, Workspace

TARGET = 3.0


class Binary:
    """Asks two distinct subquestions once, then answers: a full binary tree of distinct questions."""

    fingerprint = "bench-binary"

    async def act(self, workspace: Workspace) -> Ask | Answer:
        if workspace.depth > 0 and not workspace.steps:
            return Ask(questions=[workspace.question + "0", workspace.question + "1"])
        return Answer(answer="done")


async def gather_floor(question: str, depth: int) -> str:
    """The floor: the same recursion with nothing but asyncio.gather."""
    if depth > 0:
        await asyncio.gather(gather_floor(question + "0", depth - 1), gather_floor(question + "1", depth - 1))
    return "done"


async def anyio_floor(question: str, depth: int) -> str:
    """The same recursion with anyio task groups (what the engine uses): a second reference."""
    if depth > 0:
        async with anyio.create_task_group() as group:
            group.start_soon(anyio_floor, question + "0", depth - 1)
            group.start_soon(anyio_floor, question + "1", depth - 1)
    return "done"


@contextmanager
def gc_timer() -> Iterator[list[float]]:
    """Seconds spent in the cyclic garbage collector while the block runs (in the list yielded)."""
    spent, began = [0.0], [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - began[0]

    gc.callbacks.append(callback)
    try:
        yield spent
    finally:
        gc.callbacks.remove(callback)


def engine_run(depth: int, nodes: int, trace_file: Path | None, cache: CallCache | None) -> None:
    result = hch.answer_sync(
        "q", depth=depth, policy=Binary(), limits=Limits(max_nodes=nodes), trace_path=trace_file, call_cache=cache,
    )
    assert result.summary.nodes == nodes, result.summary  # every node really expanded


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    depth, repeats = (6, 1) if args.quick else (14, 2)
    nodes = 2 ** (depth + 1) - 1
    floor = best_of(repeats, lambda: asyncio.run(gather_floor("q", depth)))
    anyio_ref = best_of(repeats, lambda: anyio.run(anyio_floor, "q", depth))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        trace_file = Path(tmp) / "trace.json"

        def measure(name: str, tracing: bool, cache: str, seconds: float) -> None:
            rows.append({
                "config": name, "trace_file": tracing, "call_cache": cache,
                "seconds": seconds, "us_per_node": seconds / nodes * 1e6, "x_floor": seconds / floor,
            })

        in_memory = best_of(repeats, lambda: engine_run(depth, nodes, None, None))
        measure("in-memory trace, no cache", False, "off", in_memory)
        with gc_timer() as in_gc:
            headline_seconds = best_of(repeats, lambda: engine_run(depth, nodes, trace_file, None))
        measure("trace file, no cache", True, "off", headline_seconds)
        cold = []
        for i in range(repeats):  # a fresh cache file each time: every call misses and is stored
            cache = CallCache(Path(tmp) / f"cold{i}.sqlite")
            began = time.perf_counter()
            engine_run(depth, nodes, trace_file, cache)
            cold.append(time.perf_counter() - began)
            cache.close()
        measure("trace file, call cache cold", True, "cold", min(cold))
        warm = CallCache(Path(tmp) / "cold0.sqlite")  # every call is a hit
        warm_seconds = best_of(repeats, lambda: engine_run(depth, nodes, trace_file, warm))
        measure("trace file, call cache warm", True, "warm", warm_seconds)
        warm.close()
    headline = rows[1]["x_floor"]
    gc_share = in_gc[0] / (headline_seconds * repeats)
    print(f"full binary tree, depth {depth}: {nodes} workspaces")
    print(f"  floor (asyncio.gather)      {floor / nodes * 1e6:8.1f} µs/node")
    print(f"  reference (anyio groups)    {anyio_ref / nodes * 1e6:8.1f} µs/node  ({anyio_ref / floor:.2f}x floor)")
    for row in rows:
        print(f"  {row['config']:<28}{row['us_per_node']:8.1f} µs/node  ({row['x_floor']:.2f}x floor)")
    print(f"  (CPython's cyclic GC took {gc_share:.0%} of the 'trace file, no cache' runs: "
          "it walks the growing trace again and again)")
    print(f"target: trace file, no cache <= {TARGET}x floor: {headline:.2f}x {verdict(headline, TARGET)}")
    write("overhead", args.quick, args.out, {
        "depth": depth, "nodes": nodes, "repeats": repeats,
        "floor_us_per_node": floor / nodes * 1e6,
        "anyio_reference_us_per_node": anyio_ref / nodes * 1e6,
        "anyio_reference_x_floor": anyio_ref / floor,
        "configs": rows, "gc_share_of_headline": gc_share,
        "target_x_floor": TARGET, "headline_x_floor": headline, "met": headline <= TARGET,
    })


if __name__ == "__main__":
    main()
