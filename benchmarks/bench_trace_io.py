"""Trace I/O: load, `hch show` and `hch replay` of a 10^5-workspace trace, in CPU seconds.

The trace comes from an instant policy expanding exactly 10^5 distinct workspaces (plus their
policy calls), written as runs write it (schema 2, one record per line). load is timed in this
process; `hch show` and `hch replay` as the commands a user types (a fresh interpreter each, CPU
time of the child), next to `hch --version` (the interpreter's and imports' own start-up). Replay
re-runs the whole tree through the engine, so its floor is the same tree spawned by a bare
`asyncio.gather` recursion, also timed here. A larger trace is shown from its first and last
records only (`hch show` over 256 MB): that read is timed too. Target: each under 1 s.

A load keeps each workspace and policy call as its line until something reads it
(`hch.record.lazy_record`); reading every workspace and then every call after a load, `hch show --full`
(which reads every call) and the floors of a load (reading the file's bytes; parsing every workspace and
edge record with pydantic-core alone, which a load no longer does) are timed beside it.

    python benchmarks/bench_trace_io.py [--quick]
"""

from __future__ import annotations

import asyncio
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic_core
from _common import ExactTree, exact_tree_depth, parser, positive, verdict, write

import hch
from hch.files import read_bytes
from hch.limits import Limits
from hch.record import format as trace_format
from hch.run.collector import paced

TARGET = 1.0


async def gather_tree(lo: int, hi: int) -> None:
    """The replay's floor: ExactTree's shape spawned by asyncio.gather and nothing else."""
    if hi == lo:
        return
    share = -(-(hi - lo) // ExactTree.branching)
    await asyncio.gather(*(gather_tree(a, min(a + share - 1, hi)) for a in range(lo + 1, hi + 1, share)))


def cpu(repeats: int, run: Callable[[], Any]) -> float:
    """The least CPU seconds of `repeats` runs of `run()` in this process."""
    best = float("inf")
    for _ in range(repeats):
        began = time.process_time()
        run()
        best = min(best, time.process_time() - began)
    return best


def command(*args: str, cwd: Path) -> float:
    """CPU seconds of `hch ARGS` in a fresh interpreter (the child's user + system time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "hch", *args], cwd=cwd, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # replay: 1 would mean "diverged", which this trace never does
        raise SystemExit(f"hch {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def release(path: Path, repeats: int) -> float:
    """The least CPU seconds of letting a loaded trace go (the load row counts it too: `cpu` drops what
    `run()` returns before it stops the clock)."""
    best = float("inf")
    for _ in range(repeats):
        trace = trace_format.load(path)
        began = time.process_time()
        del trace
        best = min(best, time.process_time() - began)
    return best


def read_workspaces(path: Path) -> None:
    """A load, then every workspace read (what a caller touching every workspace pays in all)."""
    for _, workspace in trace_format.load(path).workspaces():
        workspace.get("status")


def read_all(path: Path) -> None:
    """A load, then every workspace and every call read (what `hch replay` and the viewer read)."""
    trace = trace_format.load(path)
    for _, workspace in trace.workspaces():
        workspace.get("status")
    for _, call in trace.calls():
        call.get("input")


def floors(path: Path, repeats: int) -> tuple[float, float, float]:
    """CPU seconds of reading the file's bytes, and of parsing the records a load once parsed (workspaces,
    delegations and reuses, header and end) with pydantic-core alone, and their megabytes."""
    read = cpu(repeats, lambda: read_bytes(path, "trace", ValueError))
    data = read_bytes(path, "trace", ValueError)
    rest = re.sub(rb'\n\{"node":\{"id":\d+,"workspace":[^\n]*|\n\{"edge":\{"source":\d+,"target":\d+,"kind":"call"\}\}',
                  b"", data)  # drop the call lines and call edge lines: what is left, every workspace and edge
    body = b"[" + rest.partition(b"\n")[2].rstrip(b"\n").replace(b"\n", b",") + b"]"
    return read, cpu(repeats, lambda: pydantic_core.from_json(body)), len(body) / 1e6


def main() -> None:
    parse = parser(__doc__.splitlines()[0])
    parse.add_argument("--nodes", type=positive, default=100_000, help="workspaces in the trace")
    args = parse.parse_args()
    size, repeats = (500, 1) if args.quick else (args.nodes, 2)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work, path = Path(tmp), Path(tmp) / "trace.json"
        began = time.process_time()
        result = hch.answer_sync(f"0-{size - 1}", depth=exact_tree_depth(size), policy=ExactTree(),
                                 limits=Limits(max_nodes=size), trace_path=path, keep_trace=False)
        run_seconds = time.process_time() - began
        assert result.summary.nodes == size, result.summary
        file_bytes = path.stat().st_size
        del result
        rows.append({"operation": "load", "seconds": cpu(repeats, lambda: trace_format.load(path))})
        let_go = release(path, repeats)
        trace = trace_format.load(path)
        records = len(trace.nodes)
        data = trace_format.to_data(trace)  # the text parser's structural check alone (a load checks columns)
        check = cpu(repeats, lambda: trace_format.structure_problem(data))
        data.clear()
        del trace
        ends = cpu(repeats, lambda: trace_format.ends(path))
        read_floor, parse_floor, parsed_mb = floors(path, repeats)
        every_workspace = cpu(repeats, lambda: read_workspaces(path))
        every_call = cpu(repeats, lambda: read_all(path))
        startup = min(command("--version", cwd=work) for _ in range(repeats))
        rows.append({"operation": "hch show", "seconds": min(command("show", str(path), cwd=work)
                                                           for _ in range(repeats))})
        show_full = min(command("show", "--full", str(path), cwd=work) for _ in range(repeats))
        rows.append({"operation": "hch replay", "seconds": min(command("replay", str(path), cwd=work)
                                                             for _ in range(repeats))})
        with paced():
            floor = cpu(repeats, lambda: asyncio.run(gather_tree(0, size - 1)))
    for row in rows:
        row["met"] = row["seconds"] <= TARGET
    print(f"trace of {size} workspaces ({records} nodes and calls), {file_bytes / 1e6:.1f} MB; "
          f"the run itself took {run_seconds:.1f} CPU s")
    print(f"  start-up of a fresh 'hch --version': {startup:.2f}s; the text parser's structural check: {check:.2f}s; "
          f"the replay's floor (same tree, bare asyncio.gather): {floor:.2f}s + start-up")
    print(f"  a large trace's summary from its first and last records (`hch show` over 256 MB): {ends * 1e3:.2f} ms")
    print(f"  reading the file: {read_floor:.2f}s; parsing its {parsed_mb:.0f} MB of workspace, edge and end records "
          f"alone (pydantic-core; a load parses none of them now) {parse_floor:.2f}s")
    print(f"  letting a loaded trace go (counted in load below): {let_go:.2f}s")
    print(f"  load, then every workspace read: {every_workspace:.2f}s; then every call too: {every_call:.2f}s; "
          f"`hch show --full` (reads every call for the critical path): {show_full:.2f}s")
    for row in rows:
        mark = verdict(row["seconds"], TARGET)
        print(f"  {row['operation']:<11}{row['seconds']:7.2f} CPU s   target < {TARGET:.0f}s {mark}")
    write("trace_io", args.quick, args.out, {
        "nodes": size, "records": records, "file_bytes": file_bytes, "run_cpu_seconds": run_seconds,
        "startup_seconds": startup, "structure_check_seconds": check, "replay_gather_floor_seconds": floor,
        "summary_from_ends_seconds": ends, "read_floor_seconds": read_floor, "parse_floor_seconds": parse_floor,
        "parsed_megabytes": parsed_mb, "release_seconds": let_go,
        "load_and_read_every_workspace_seconds": every_workspace,
        "load_and_read_every_call_seconds": every_call, "show_full_seconds": show_full,
        "rows": rows, "clock": "process_time",
        "target_seconds": TARGET, "met": all(row["met"] for row in rows),
    })


if __name__ == "__main__":
    main()
