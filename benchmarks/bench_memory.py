"""Memory: peak RSS of runs by nodes recorded, 10^4 to 10^6, the trace streamed to its file or kept.

Each size runs in a fresh process (peak RSS from resource.getrusage can only grow), against a
baseline process that imports the same modules and runs a one-node tree. `streamed`: the trace goes
to its file as the run goes and is let go (`answer(..., keep_trace=False)`); `kept`: it is also held
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

size, keep = int(sys.argv[1]), sys.argv[2] == "kept"
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with tempfile.TemporaryDirectory() as tmp:
    result = hch.answer_sync(f"0-{size - 1}", depth=exact_tree_depth(size), policy=ExactTree(),
                             limits=Limits(max_nodes=size), trace_path=Path(tmp) / "trace.json", keep_trace=keep)
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
    kept = [200] if args.quick else [10_000, 100_000]
    base, floor_base = measure(1, "kept"), measure_floor(1)
    rows = []
    for mode, sizes in (("streamed", streamed), ("kept", kept)):
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
    print(f"baseline process (imports + a one-node run): {base['peak_kib'] / 1024:.1f} MiB peak RSS")
    print(f"  {'mode':<9}{'nodes':>9}{'calls':>9}  {'peak MiB':>9}  {'KiB/node':>9}  {'marginal':>9}  "
          f"{'ref. KiB/node':>13}  {'file B/node':>11}")
    for row in rows:
        marginal = row.get("marginal_kib_per_node")
        print(f"  {row['mode']:<9}{row['nodes']:>9}{row['calls']:>9}  {row['extra_kib'] / 1024:9.1f}  "
              f"{row['kib_per_node']:9.2f}  {'' if marginal is None else f'{marginal:9.2f}':>9}  "
              f"{row['breadth_first_floor_kib_per_node']:13.2f}  {row['trace_bytes_per_node']:11.0f}")
    print("  ref.: a bare asyncio task-group recursion over the same tree, its tasks run breadth first")
    met = largest_mb <= TARGET_MB
    print(f"target: a streamed run of {largest['nodes']} nodes under {TARGET_MB:.0f} MiB above the baseline: "
          f"{largest_mb:.0f} MiB {verdict(largest_mb, TARGET_MB)}")
    write("memory", args.quick, args.out, {
        "baseline": base, "rows": rows, "target_mib": TARGET_MB, "largest_streamed_mib": largest_mb, "met": met,
    })


if __name__ == "__main__":
    main()
