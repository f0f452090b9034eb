"""Sweeps on several processes: how much sooner a CPU-bound sweep ends on N workers than in one process.

The sweep: the offline expert (every call is pure CPU) over 300 union-find and 300 permutation-powering
questions (`--per-task`) at depths 0-4, with a fresh call cache each time, so every call is made. Measured in CPU
time only (time.process_time here, /proc for the workers), so the figures do not depend on what
else the machine runs:

- one process: the sweep's CPU time in this process;
- N workers: the parent's CPU time plus the CPU time of its busiest worker (start-up and imports
  included). With N idle cores the workers run side by side, so the sweep ends after about that long:
  speed-up = one process / (parent + busiest worker). Total CPU (parent + every worker) / one process
  is the overhead paid for it (each worker starts Python and imports hch, and a subtree two workers
  both need is computed by both).

Target: a speed-up of at least 0.75 x N with N = 2 workers (on 2 cores: at least 1.5x). A worker's
start-up (a new interpreter importing what a worker imports) is measured and printed apart: it is paid
once per worker whatever the sweep's size, so a small sweep cannot show the speed-up.

Each is run `--repeats` times (3), alternately, and the least CPU time of each counts.

    python benchmarks/bench_workers.py [--quick] [--per-task N] [--repeats N]
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import parser, positive, write

from hch.experts import ExpertPolicy
from hch.run.call_cache import CallCache
from hch.study.question_set import Item
from hch.study.sweep import SweepConfig, run_sweep
from hch.study.workers import LocalPool
from hch.tasks import get_task

WORKERS = 2
TARGET = 0.75 * WORKERS
Workers = tuple[float, int, float, list[float]]
"""A run on the workers: parent + busiest worker's CPU seconds, calls made, the parent's, each worker's."""


def sweep(items: list[Item], depths: list[int], folder: Path, pool: LocalPool | None) -> tuple[int, float]:
    """Calls made and this process's CPU seconds for one sweep."""
    config = SweepConfig(source="bench", questions=len(items), depths=depths, policy="expert")
    cache = CallCache(folder / "cache.sqlite")
    began = time.process_time()
    try:
        outcome = anyio.run(lambda: run_sweep(items, config, {1: ExpertPolicy()}, folder / "out", cache, pool=pool))
    finally:
        cache.close()
    return outcome.calls_made, time.process_time() - began


def start_up() -> float:
    """CPU seconds of a new interpreter that imports what a worker imports, and exits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    imports = "import hch.study.workers, hch.study.sweep, hch.experts, hch.tasks, hch.run.engine"
    subprocess.run([sys.executable, "-c", imports], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(items: list[Item], depths: list[int], repeats: int) -> tuple[tuple[int, float], Workers]:
    """One process and the workers, alternately `repeats` times, each the least CPU time of its runs
    (the machine's noise then falls on both sides alike)."""
    ones: list[tuple[int, float]] = []
    manys: list[Workers] = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(repeats):
            ones.append(sweep(items, depths, Path(scratch) / f"one-{index}", None))
            pool = LocalPool(WORKERS)
            calls, parent = sweep(items, depths, Path(scratch) / f"many-{index}", pool)
            workers = pool.cpu_seconds or [0.0]
            manys.append((parent + max(workers), calls, parent, workers))
    return min(ones, key=lambda run: run[1]), min(manys)


def main() -> None:
    command = parser(__doc__.splitlines()[0])
    command.add_argument("--per-task", type=positive, default=300, help="questions of each of the two tasks")
    command.add_argument("--repeats", type=positive, default=3, help="runs of each, alternately; the least counts")
    args = command.parse_args()
    count, depths = (4, [0, 1, 2]) if args.quick else (args.per_task, [0, 1, 2, 3, 4])
    items = get_task("union-find").generate(count, seed=1) + get_task("permutation-powering").generate(count, seed=1)
    repeats = 1 if args.quick else args.repeats
    (calls_one, one), (critical, calls_many, parent, workers) = measure(items, depths, repeats)
    busiest = max(workers)
    speedup = one / critical if critical else 0.0
    overhead = (parent + sum(workers)) / one if one else 0.0
    print(f"{len(items)} questions x {len(depths)} depths, the least of {args.repeats} alternate runs each")
    print(f"one process: {one:.2f} s CPU, {calls_one} calls")
    print(f"{WORKERS} workers: parent {parent:.2f} s + busiest worker {busiest:.2f} s CPU "
          f"(workers: {', '.join(f'{w:.2f}' for w in workers)}), {calls_many} calls")
    print(f"speed-up {speedup:.2f}x, total CPU {overhead:.2f}x one process")
    launch = min(start_up() for _ in range(3))
    print(f"a worker's start-up (interpreter and imports, paid once per worker): {launch:.2f} s CPU")
    print(f"target: speed-up >= {TARGET:.2f} with {WORKERS} workers: {'ok' if speedup >= TARGET else 'MISSED'}")
    write("workers", args.quick, args.out, {
        "questions": len(items), "depths": depths, "workers": WORKERS, "repeats": args.repeats,
        "calls_one_process": calls_one, "calls_workers": calls_many, "cpu_one_process": one, "cpu_parent": parent,
        "cpu_workers": workers, "speedup": speedup, "total_cpu_ratio": overhead, "worker_start_up_cpu": launch,
        "target_speedup": TARGET, "met": speedup >= TARGET,
    })


if __name__ == "__main__":
    main()
