"""Ought's ICE on the overhead benchmark's tree: run by `bench_overhead.py --ice-python PYTHON`.

ICE (`pip install ought-ice==0.5.0`, with `pydantic<2` and `requests`: it needs pydantic 1, so it
lives in its own virtual environment) is not imported by hch. This script runs in that environment:
a full binary tree of distinct questions, each node one `@trace`d recipe function that gathers its
two children (ICE's own way to fan out), with ICE's tracing on (trace files written) and off, next
to the same `asyncio.gather` floor under the same collector pacing, all in CPU time. It prints one
JSON object.

    /path/to/ice-venv/bin/python benchmarks/ice_tree.py DEPTH REPEATS
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OUGHT_ICE_DIR", tempfile.mkdtemp(prefix="ice-bench-"))
os.environ["OUGHT_ICE_AUTO_SERVER"] = "0"
os.environ["OUGHT_ICE_AUTO_BROWSER"] = "0"

import ice.trace


@ice.trace.trace
async def node(question: str, depth: int) -> str:
    """One traced node: ask two distinct subquestions concurrently, then answer."""
    if depth > 0:
        await asyncio.gather(node(question + "0", depth - 1), node(question + "1", depth - 1))
    return "done"


async def floor(question: str, depth: int) -> str:
    if depth > 0:
        await asyncio.gather(floor(question + "0", depth - 1), floor(question + "1", depth - 1))
    return "done"


def cpu(repeats: int, run: Callable[[], Any]) -> float:
    """The least CPU time of `repeats` runs, the collector paced as hch paces it during runs."""
    best = float("inf")
    saved = gc.get_threshold()
    gc.set_threshold(*map(max, saved, (50_000, 50, 100)))
    try:
        for _ in range(repeats):
            gc.collect()
            began = time.process_time()
            run()
            best = min(best, time.process_time() - began)
    finally:
        gc.set_threshold(*saved)
    return best


def main() -> None:
    depth, repeats = int(sys.argv[1]), int(sys.argv[2])
    nodes = 2 ** (depth + 1) - 1

    def traced() -> None:
        async def go() -> None:
            ice.trace.enable_trace()
            await node("q", depth)
            trace = ice.trace.trace_var.get()
            if trace is not None:
                trace.file.close()
                trace.block_file.close()

        asyncio.run(go())

    figures = {
        "nodes": nodes,
        "floor_us_per_node": cpu(repeats, lambda: asyncio.run(floor("q", depth))) / nodes * 1e6,
        "untraced_us_per_node": cpu(repeats, lambda: asyncio.run(node("q", depth))) / nodes * 1e6,
        "traced_us_per_node": cpu(repeats, traced) / nodes * 1e6,
        "version": __import__("importlib.metadata").metadata.version("ought-ice"),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
