"""Memory: peak RSS of runs by nodes recorded, 10^4 to 10^6, the trace streamed to its file or kept.

Each size runs in a fresh process (peak RSS from resource.getrusage can only grow), against a
baseline process that imports the same modules and runs a one-node tree. `streamed`: the trace goes
to its file as the run goes and is let go (`answer(..., keep_trace=False)`); `cached`: streamed, and
every call stored in a new call cache (its index is mapped into memory); `kept`: the trace is also held
in memory, as `hch ask` does (it prints the tree). The reference is what a bare asyncio task-group
recursion over the same tree costs when its tasks run in asyncio's own (breadth-first) order: every
node alive at once. Target: a 10^6-node streamed run under 1 GB peak RSS, growing linearly.

    python benchmarks/bench_memory.py [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import parser, verdict, write

TARGET_MB = 1024.0
"""Peak RSS above the baseline of the largest streamed run (10^6 nodes), at most."""

CHILD = r'''
import json, resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, BENCHMARKS)
import hch
from hch.limits import Limits
from _common import ExactTree, exact_tree_depth

size, keep, cached = int(sys.argv[1]), sys.argv[2] == "kept", sys.argv[2] == "cached"
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with tempfile.TemporaryDirectory() as tmp:
    cache = hch.CallCache(Path(tmp) / "cache.sqlite") if cached else None
    result = hch.answer_sync(f"0-{size - 1}", depth=exact_tree_depth(size), policy=ExactTree(), call_cache=cache,
                             limits=Limits(max_nodes=size), trace_path=Path(tmp) / "trace.json", keep_trace=keep)
    if cache is not None:
        cache.close()
    assert result.summary.nodes == size, result.summary
    saved = (Path(tmp) / "trace.json").stat().st_size
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"nodes": size, "calls": result.summary.policy_calls, "peak_kib": peak,
                  "before_kib": before, "trace_bytes": saved}))
'''

FLOOR = r'''
import asyncio, json, resource, sys
size = int(sys.argv[1])
async def tree(lo, hi):
    if hi == lo:
        return
    share = -(-(hi - lo) // 4)
    async with asyncio.TaskGroup() as group:
        for a in range(lo + 1, hi + 1, share):
            group.create_task(tree(a, min(a + share - 1, hi)))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
asyncio.run(tree(0, size - 1))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"nodes": size, "peak_kib": peak, "before_kib": before}))
'''


SHAPE = r'''
import json, resource, sys, time
import hch
from hch.limits import Limits
from hch.workspace import Answer, Ask

shape, size = sys.argv[1], int(sys.argv[2])

class Chain:  # "n" asks "n-1" down to 0: a chain of size nodes
    fingerprint = "bench-chain"
    async def act(self, w):
        n = int(w.question)
        return Ask(questions=[str(n - 1)]) if n and not w.steps else Answer(answer="done")

class Fan:  # the root asks size - 1 questions in one step, each answered at once
    fingerprint = "bench-fan"
    async def act(self, w):
        if w.question == "root" and not w.steps:
            return Ask(questions=[f"q{i}" for i in range(size - 1)])
        return Answer(answer="done")

policy, depth, question = (Chain(), size - 1, str(size - 1)) if shape == "chain" else (Fan(), 1, "root")
limits = Limits(max_nodes=size, max_asks_per_step=max(8, size))
hch.answer_sync("2", depth=2, policy=Chain(), limits=limits)  # warm up: first-use imports and caches
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.process_time()
result = hch.answer_sync(question, depth=depth, policy=policy, limits=limits)
seconds = time.process_time() - began
assert result.summary.nodes == size, result.summary
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"shape": shape, "nodes": size, "seconds": seconds, "peak_kib": peak, "before_kib": before}))
'''
SHAPES = {"chain": (1_000, 10_000), "fan-out": (101, 1_001)}
"""Issue 14's shapes: a chain of 10^3 and 10^4 nodes, one step asking 10^2 and 10^3 questions."""
LINEAR = 1.5
"""Per-node CPU time and memory of the larger size at most this many times the smaller's."""


def shapes(quick: bool) -> list[dict[str, Any]]:
    """CPU µs and KiB per node of each shape at two sizes, each in a fresh process (trace in memory)."""
    rows = []
    for shape, sizes in SHAPES.items():
        for size in ((20, 200) if quick else sizes):
            out = subprocess.run([sys.executable, "-c", SHAPE, shape.split("-")[0], str(size)],
                                 capture_output=True, text=True, check=True)
            row = json.loads(out.stdout)
            row.update(shape=shape, us_per_node=row["seconds"] / size * 1e6,
                       kib_per_node=(row["peak_kib"] - row["before_kib"]) / size)
            rows.append(row)
    return rows


def measure(size: int, mode: str) -> dict[str, Any]:
    child = CHILD.replace("BENCHMARKS", repr(str(Path(__file__).resolve().parent)))
    out = subprocess.run([sys.executable, "-c", child, str(size), mode], capture_output=True, text=True, check=True)
    return {**json.loads(out.stdout), "mode": mode}


def measure_floor(size: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", FLOOR, str(size)], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    streamed = [200, 1_000] if args.quick else [10_000, 100_000, 1_000_000]
    cached = [200] if args.quick else [100_000, 1_000_000]
    kept = [200] if args.quick else [10_000, 100_000]
    base, floor_base = measure(1, "kept"), measure_floor(1)
    rows = []
    for mode, sizes in (("streamed", streamed), ("cached", cached), ("kept", kept)):
        previous = None
        for size in sizes:
            row = measure(size, mode)
            extra = row["peak_kib"] - base["peak_kib"]
            floor = (measure_floor(size)["peak_kib"] - floor_base["peak_kib"]) / size
            row.update(extra_kib=extra, kib_per_node=extra / size, trace_bytes_per_node=row["trace_bytes"] / size,
                       breadth_first_floor_kib_per_node=floor)
            if previous is not None:  # linear growth: the marginal cost stays at (or under) the average
                row["marginal_kib_per_node"] = (row["peak_kib"] - previous["peak_kib"]) / (size - previous["nodes"])
            previous = row
            rows.append(row)
    largest = max((row for row in rows if row["mode"] == "streamed"), key=lambda row: row["nodes"])
    largest_mb = largest["extra_kib"] / 1024
    largest_cached = max((row for row in rows if row["mode"] == "cached"), key=lambda row: row["nodes"])
    largest_cached_mb = largest_cached["extra_kib"] / 1024
    print(f"baseline process (imports + a one-node run): {base['peak_kib'] / 1024:.1f} MiB peak RSS")
    print(f"  {'mode':<9}{'nodes':>9}{'calls':>9}  {'peak MiB':>9}  {'KiB/node':>9}  {'marginal':>9}  "
          f"{'ref. KiB/node':>13}  {'file B/node':>11}")
    for row in rows:
        marginal = row.get("marginal_kib_per_node")
        print(f"  {row['mode']:<9}{row['nodes']:>9}{row['calls']:>9}  {row['extra_kib'] / 1024:9.1f}  "
              f"{row['kib_per_node']:9.2f}  {'' if marginal is None else f'{marginal:9.2f}':>9}  "
              f"{row['breadth_first_floor_kib_per_node']:13.2f}  {row['trace_bytes_per_node']:11.0f}")
    print("  ref.: a bare asyncio task-group recursion over the same tree, its tasks run breadth first")
    shape_rows = shapes(args.quick)
    growth = {}
    print("  shape       nodes   CPU µs/node   KiB/node   (trace in memory)")
    for row in shape_rows:
        print(f"  {row['shape']:<9}{row['nodes']:>8}  {row['us_per_node']:12.1f}  {row['kib_per_node']:9.2f}")
    for small, large in zip(shape_rows[::2], shape_rows[1::2], strict=True):
        growth[small["shape"]] = {"time": large["us_per_node"] / small["us_per_node"],
                                  "memory": large["kib_per_node"] / max(small["kib_per_node"], 1e-9)}
    worst_growth = max(max(g.values()) for g in growth.values())
    print(f"target: per-node time and memory of the larger of each shape <= {LINEAR}x the smaller's: "
          + ", ".join(f"{k} time {g['time']:.2f}x memory {g['memory']:.2f}x" for k, g in growth.items())
          + f" {verdict(worst_growth, LINEAR)}")
    met = max(largest_mb, largest_cached_mb) <= TARGET_MB and worst_growth <= LINEAR
    print(f"target: a streamed run of {largest['nodes']} nodes under {TARGET_MB:.0f} MiB above the baseline: "
          f"{largest_mb:.0f} MiB {verdict(largest_mb, TARGET_MB)}; with a call cache "
          f"{largest_cached_mb:.0f} MiB {verdict(largest_cached_mb, TARGET_MB)}")
    write("memory", args.quick, args.out, {
        "baseline": base, "rows": rows, "target_mib": TARGET_MB, "largest_streamed_mib": largest_mb,
        "largest_cached_mib": largest_cached_mb,
        "shapes": shape_rows, "shape_growth": growth, "target_linear": LINEAR, "met": met,
    })


if __name__ == "__main__":
    main()
