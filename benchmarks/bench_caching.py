"""Caching: policy calls made against distinct calls, in one run and across a depth sweep.

1. Within a run: shortest-path questions at depth 6 with the offline expert. Unfolded, their
   trees are exponential (every path is re-explored from every node), but few questions are
   distinct. Each distinct policy call (policy, workspace shown) must be made once:
   target calls made / distinct calls = 1.00 (and expanded nodes / distinct (question, depth) = 1.00).
2. Across depths: `hch sweep --depths 0-6` against `hch sweep --depths 6` on the same questions,
   for the shortest-path task and (for comparison) arithmetic. Target: the whole sweep makes at
   most 1.1x the calls of its deepest runs alone (applied to shortest path). These sweeps use
   `expert(early_guess)`, whose below-depth runs are nearly free, so the ratio shows the caching;
   the honest expert's below-depth runs are real work (see the README's depth sweeps).

    python benchmarks/bench_caching.py [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import networkx as nx
from _common import parser, verdict, write

import hch
from hch.record import format as trace_format
from hch.record.trace import Trace
from hch.tasks import get_task

TASK = "shortest-path"
DEPTH = 6
SWEEP_TARGET = 1.1
SWEEP_POLICY = "expert(early_guess)"


def unfolded_size(trace: Trace) -> int:
    """Workspaces the run's tree would have had with no subtree cache (the DAG unfolded)."""
    graph = trace.graph
    tree_edges = [(u, v) for u, v, d in graph.edges(data=True) if d["kind"] in ("delegate", "reuse")]
    dag = nx.DiGraph(tree_edges)
    dag.add_node(trace.root)

    @cache
    def size(node: int) -> int:
        repeats = [1 + int(graph.edges[node, child].get("repeats", 0)) for child in dag.succ[node]]
        return 1 + sum(size(child) * times for child, times in zip(dag.succ[node], repeats, strict=True))

    return size(trace.root)


def within_run(count: int) -> dict[str, Any]:
    items = [item for item in get_task(TASK).generate(count * 6, seed=0) if item.required_depth == DEPTH][:count]
    runs: list[dict[str, Any]] = []
    for item in items:
        result = hch.answer_sync(item.question, depth=DEPTH, context=item.context)
        calls = [data for _, data in result.trace.calls()]
        made = [c for c in calls if not c["cached"]]
        distinct_calls = {(c["policy"], json.dumps(c["input"], sort_keys=True)) for c in made}
        workspaces = [data for _, data in result.trace.workspaces()]
        distinct_nodes = {(" ".join(w["question"].split()), w["depth"]) for w in workspaces}
        runs.append({
            "question": item.question, "correct": result.answer == item.answer,
            "calls_made": len(made), "distinct_calls": len(distinct_calls),
            "nodes": len(workspaces), "distinct_nodes": len(distinct_nodes),
            "unfolded_nodes": unfolded_size(result.trace),
        })
    made_total = sum(int(r["calls_made"]) for r in runs)
    distinct_total = sum(int(r["distinct_calls"]) for r in runs)
    return {
        "questions": len(runs), "runs": runs, "calls_made": made_total, "distinct_calls": distinct_total,
        "calls_ratio": made_total / distinct_total,
        "nodes_ratio": sum(r["nodes"] for r in runs) / sum(r["distinct_nodes"] for r in runs),
        "unfolded_nodes": sum(r["unfolded_nodes"] for r in runs), "nodes": sum(r["nodes"] for r in runs),
    }


def sweep_calls(tmp: Path, name: str, count: int, depths: str, task: str = TASK) -> dict[str, Any]:
    """Run `hch sweep` in `tmp` (no call cache: only the sweep's own subtree sharing counts)."""
    command = [sys.executable, "-m", "hch", "sweep", "--task", task, "-n", str(count), "--depths", depths,
               "--no-cache", "--no-plot", "--out", name, "--policy", SWEEP_POLICY]
    subprocess.run(command, cwd=tmp, capture_output=True, text=True, check=True)
    totals: dict[str, Any] = json.loads((tmp / name / "sweep.json").read_text())["totals"]
    made, distinct = 0, set()
    for path in sorted((tmp / name / "traces").rglob("*.json")):
        trace = trace_format.load(path)
        context = trace.meta.get("context", "")
        for _, call in trace.calls():
            if not call["cached"] and not call.get("grafted"):
                made += 1
                distinct.add((call["policy"], context, json.dumps(call["input"], sort_keys=True)))
    totals.update(traced_calls_made=made, distinct_calls=len(distinct))
    return totals


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    count = 2 if args.quick else 10
    sweep_count = 6 if args.quick else 60
    inside = within_run(count)
    with tempfile.TemporaryDirectory() as tmp:
        full = sweep_calls(Path(tmp), "all", sweep_count, f"0-{DEPTH}")
        deepest = sweep_calls(Path(tmp), "deepest", sweep_count, str(DEPTH))
        arith_full = sweep_calls(Path(tmp), "arith-all", sweep_count, f"0-{DEPTH}", "arithmetic")
        arith_deepest = sweep_calls(Path(tmp), "arith-deepest", sweep_count, str(DEPTH), "arithmetic")
    sweep_ratio = full["calls_made"] / deepest["calls_made"]
    arith_ratio = arith_full["calls_made"] / arith_deepest["calls_made"]
    print(f"{TASK}, depth {DEPTH}, {inside['questions']} questions, offline expert, one run each:")
    print(f"  workspaces if unfolded {inside['unfolded_nodes']:>8}   expanded {inside['nodes']:>6}   "
          f"(nodes / distinct (question, depth) = {inside['nodes_ratio']:.2f})")
    print(f"  policy calls made {inside['calls_made']:>6}   distinct calls {inside['distinct_calls']:>6}   "
          f"ratio {inside['calls_ratio']:.2f}  target 1.00 {verdict(inside['calls_ratio'], 1.0)}")
    print(f"hch sweep --task {TASK} -n {sweep_count} --policy {SWEEP_POLICY!r} (no call cache):")
    print(f"  --depths 0-{DEPTH}: {full['calls_made']} calls, {full['runs']} runs; --depths {DEPTH}: "
          f"{deepest['calls_made']} calls, {deepest['runs']} runs")
    print(f"  ratio {sweep_ratio:.3f}  target <= {SWEEP_TARGET} {verdict(sweep_ratio, SWEEP_TARGET)}")
    print(f"  the 0-{DEPTH} sweep made {full['traced_calls_made']} calls for {full['distinct_calls']} distinct "
          f"(policy, context, workspace) calls: ratio {full['traced_calls_made'] / full['distinct_calls']:.2f}")
    print(f"hch sweep --task arithmetic -n {sweep_count}, for comparison: --depths 0-{DEPTH} "
          f"{arith_full['calls_made']} calls, --depths {DEPTH} {arith_deepest['calls_made']}: ratio {arith_ratio:.3f}")
    write("caching", args.quick, args.out, {
        "task": TASK, "depth": DEPTH, "within_run": inside,
        "sweep": {"questions": sweep_count, "all_depths": full, "deepest_only": deepest, "ratio": sweep_ratio,
                  "calls_made_per_distinct_call": full["traced_calls_made"] / full["distinct_calls"]},
        "arithmetic_sweep": {"all_depths": arith_full, "deepest_only": arith_deepest, "ratio": arith_ratio},
        "targets": {"calls_ratio": 1.0, "sweep_ratio": SWEEP_TARGET},
        "met": inside["calls_ratio"] <= 1.0 and inside["nodes_ratio"] <= 1.0 and sweep_ratio <= SWEEP_TARGET,
    })


if __name__ == "__main__":
    main()
