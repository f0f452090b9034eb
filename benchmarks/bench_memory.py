"""Memory: peak RSS per node of runs with tracing on, from 10^4 to 2x10^5 nodes.

Each size runs in a fresh process (peak RSS from resource.getrusage can only grow), against a
baseline process that imports the same modules and runs a one-node tree. The run records its
trace in memory, journals it and writes the trace file, as `hch ask` does. The floor is a
fresh process holding the same graph (the same workspaces, calls and edges, with attribute
dicts of the same keys and sizes) in a networkx DiGraph, built directly with no engine.
Target: at most 2 KB per node, growing linearly.

    python benchmarks/bench_memory.py [--quick]
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import parser, verdict, write

TARGET_KB = 2.0

CHILD = r'''
import json, resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, BENCHMARKS)
import hch
from hch.limits import Limits
from _common import ExactTree, exact_tree_depth

size = int(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with tempfile.TemporaryDirectory() as tmp:
    result = hch.answer_sync(f"0-{size - 1}", depth=exact_tree_depth(size), policy=ExactTree(),
                             limits=Limits(max_nodes=size),
                             trace_path=Path(tmp) / "trace.json")
    assert result.summary.nodes == size, result.summary
    saved = (Path(tmp) / "trace.json").stat().st_size
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"nodes": size, "calls": result.summary.policy_calls, "peak_kib": peak,
                  "before_kib": before, "trace_bytes": saved}))
'''

FLOOR = r'''
import json, resource, sys
import networkx as nx
size = int(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
graph = nx.DiGraph()
ids = iter(range(10**9))
def usage(): return {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "cost": 0.0}
def call(ws, question, depth, steps, output):
    c = next(ids)
    graph.add_node(c, kind="call", workspace=ws, policy="bench-exact",
                   input={"question": question, "depth": depth, "steps": steps, "max_asks": 8,
                          "steps_left": 8 - len(steps), "refusal": None},
                   output=output, usage=usage(), latency=1e-05, cached=False, started=0.5, raw=None,
                   attempts=[], error=None)
    graph.add_edge(ws, c, kind="call")
stack = [(0, size - 1, 12, None, 0)]
while stack:
    lo, hi, depth, parent, order = stack.pop()
    q = f"{lo}-{hi}"
    ws = next(ids)
    graph.add_node(ws, kind="workspace", question=q, depth=depth, policy="bench-exact", answer="done",
                   status="ok", started=0.1, ended=0.2, cycle_of=None, limit=None, error=None)
    if parent is not None:
        graph.add_edge(parent, ws, kind="delegate", step=0, order=order)
    if lo == hi:
        call(ws, q, depth, (), {"kind": "answer", "answer": "done", "guess": False})
        continue
    share = -(-(hi - lo) // 4)
    kids = [f"{a}-{min(a + share - 1, hi)}" for a in range(lo + 1, hi + 1, share)]
    call(ws, q, depth, (), {"kind": "ask", "questions": kids})
    call(ws, q, depth, (tuple({"question": k, "answer": "done", "status": "ok"} for k in kids),),
         {"kind": "answer", "answer": "done", "guess": False})
    for i, a in enumerate(range(lo + 1, hi + 1, share)):
        stack.append((a, min(a + share - 1, hi), depth - 1, ws, i))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"nodes": size, "peak_kib": peak, "before_kib": before, "graph_nodes": graph.number_of_nodes()}))
'''


def measure(size: int) -> dict[str, Any]:
    child = CHILD.replace("BENCHMARKS", repr(str(Path(__file__).resolve().parent)))
    out = subprocess.run([sys.executable, "-c", child, str(size)], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def measure_floor(size: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", FLOOR, str(size)], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    sizes = [200, 1_000] if args.quick else [10_000, 25_000, 50_000, 100_000, 200_000]
    base, floor_base = measure(1), measure_floor(1)
    rows = []
    for size in sizes:
        row = measure(size)
        extra = row["peak_kib"] - base["peak_kib"]
        floor = (measure_floor(size)["peak_kib"] - floor_base["peak_kib"]) / size
        row.update(extra_kib=extra, kib_per_node=extra / size, trace_bytes_per_node=row["trace_bytes"] / size,
                   networkx_floor_kib_per_node=floor)
        rows.append(row)
    # linear growth: the marginal cost between consecutive sizes stays at the average cost
    for low, high in itertools.pairwise(rows):
        high["marginal_kib_per_node"] = (high["peak_kib"] - low["peak_kib"]) / (high["nodes"] - low["nodes"])
    worst = max(row["kib_per_node"] for row in rows)
    worst_marginal = max((row.get("marginal_kib_per_node", 0.0) for row in rows), default=0.0)
    print(f"baseline process (imports + a one-node run): {base['peak_kib'] / 1024:.1f} MiB peak RSS")
    print(f"  {'nodes':>8}{'calls':>8}  {'peak MiB':>9}  {'KiB/node':>9}  {'marginal':>9}  "
          f"{'floor KiB/node':>14}  {'file B/node':>11}")
    for row in rows:
        marginal = row.get("marginal_kib_per_node")
        print(f"  {row['nodes']:>8}{row['calls']:>8}  {row['peak_kib'] / 1024:9.1f}  {row['kib_per_node']:9.2f}  "
              f"{'' if marginal is None else f'{marginal:9.2f}':>9}  {row['networkx_floor_kib_per_node']:14.2f}  "
              f"{row['trace_bytes_per_node']:11.0f}")
    print("  floor: the same graph held in a networkx DiGraph with no engine (what the trace's data costs)")
    met = worst <= TARGET_KB and worst_marginal <= TARGET_KB
    print(f"target: <= {TARGET_KB} KiB/node, linear: worst {worst:.2f} KiB/node (marginal {worst_marginal:.2f}) "
          f"{verdict(max(worst, worst_marginal), TARGET_KB)}")
    write("memory", args.quick, args.out, {
        "baseline": base, "rows": rows, "target_kib_per_node": TARGET_KB,
        "worst_kib_per_node": worst, "worst_marginal_kib_per_node": worst_marginal, "met": met,
    })


if __name__ == "__main__":
    main()
