"""Run every benchmark, one after another, each in its own process: python benchmarks/run_all.py [--quick].

Without --quick it also runs the engine's flat series from 10^3 to 10^6 workspaces (about 10 minutes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = [["bench_overhead.py"], ["bench_concurrency.py"], ["bench_caching.py"], ["bench_memory.py"],
           ["bench_trace_io.py"], ["bench_workers.py"]]
FLAT = ["bench_overhead.py", "--flat", "9,13,16,19", "--flat-repeats", "3"]


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    quick = "--quick" in sys.argv[1:]
    for script, *options in SCRIPTS if quick else [*SCRIPTS, FLAT]:
        print(f"== {' '.join([script, *options])}", flush=True)
        if subprocess.run([sys.executable, str(here / script), *options, *sys.argv[1:]]).returncode != 0:
            failed.append(" ".join([script, *options]))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
