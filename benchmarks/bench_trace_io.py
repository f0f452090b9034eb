"""Trace I/O: save, load, `hch show` and `hch replay` of a 10^5-node trace.

The trace comes from an instant policy expanding exactly 10^5 distinct workspaces (plus their
policy calls). save and load are timed in this process; `hch show` and `hch replay` as the
commands a user types (a fresh interpreter each), next to `hch --version`, the interpreter's
and imports' own start-up. Replay re-runs the whole tree through the engine, so its floor is
the same tree spawned with bare anyio task groups, also timed here. Target: each under 2 s.

    python benchmarks/bench_trace_io.py [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _common import ExactTree, best_of, exact_tree_depth, parser, verdict, write

import hch
from hch.limits import Limits
from hch.record import format as trace_format
from hch.record.trace import Trace

TARGET = 2.0


async def anyio_tree(lo: int, hi: int) -> None:
    """The replay's floor: ExactTree's shape spawned with anyio task groups and nothing else."""
    if hi == lo:
        return
    share = -(-(hi - lo) // ExactTree.branching)
    async with anyio.create_task_group() as group:
        for a in range(lo + 1, hi + 1, share):
            group.start_soon(anyio_tree, a, min(a + share - 1, hi))


def timed_save(trace: Trace, path: Path, repeats: int) -> float:
    return best_of(repeats, lambda: trace_format.save(trace, path))


def command(*args: str, cwd: Path) -> float:
    """Wall seconds of `hch ARGS` in a fresh interpreter; a failure stops the benchmark."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hch", *args], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    parse = parser(__doc__.splitlines()[0])
    parse.add_argument("--nodes", type=int, default=100_000, help="workspaces in the trace")
    args = parse.parse_args()
    size, repeats = (500, 1) if args.quick else (args.nodes, 2)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work, path = Path(tmp), Path(tmp) / "trace.json"
        began = time.perf_counter()
        result = hch.answer_sync(f"0-{size - 1}", depth=exact_tree_depth(size), policy=ExactTree(),
                                 limits=Limits(max_nodes=size))
        run_seconds = time.perf_counter() - began
        assert result.summary.nodes == size, result.summary
        graph_nodes = result.trace.graph.number_of_nodes()
        rows.append({"operation": "save", "seconds": timed_save(result.trace, path, repeats)})
        file_bytes = path.stat().st_size
        del result
        rows.append({"operation": "load", "seconds": best_of(repeats, lambda: trace_format.load(path))})
        data = json.loads(path.read_text(encoding="utf-8"))  # the structural check alone, part of load
        check = best_of(repeats, lambda: trace_format.structure_problem(data))
        data.clear()
        startup = min(command("--version", cwd=work) for _ in range(repeats))
        rows.append({"operation": "hch show", "seconds": min(command("show", str(path), cwd=work)
                                                           for _ in range(repeats))})
        rows.append({"operation": "hch replay", "seconds": min(command("replay", str(path), cwd=work)
                                                             for _ in range(repeats))})
        floor = best_of(repeats, lambda: anyio.run(anyio_tree, 0, size - 1))
    for row in rows:
        row["met"] = row["seconds"] <= TARGET
    print(f"trace of {size} workspaces ({graph_nodes} graph nodes), {file_bytes / 1e6:.1f} MB; "
          f"the run itself took {run_seconds:.1f}s")
    print(f"  start-up of a fresh 'hch --version': {startup:.2f}s; "
          f"the replay's floor (same tree, bare anyio task groups): {floor:.2f}s; "
          f"structural check (part of load): {check:.2f}s")
    for row in rows:
        mark = verdict(row["seconds"], TARGET)
        print(f"  {row['operation']:<11}{row['seconds']:7.2f}s   target < {TARGET:.0f}s {mark}")
    write("trace_io", args.quick, args.out, {
        "nodes": size, "graph_nodes": graph_nodes, "file_bytes": file_bytes, "run_seconds": run_seconds,
        "startup_seconds": startup, "structure_check_seconds": check, "replay_anyio_floor_seconds": floor, "rows": rows,
        "target_seconds": TARGET, "met": all(row["met"] for row in rows),
    })


if __name__ == "__main__":
    main()
