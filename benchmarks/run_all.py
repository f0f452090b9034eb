"""Run every benchmark, one after another, each in its own process: python benchmarks/run_all.py [--quick]."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = ["bench_overhead.py", "bench_concurrency.py", "bench_caching.py", "bench_memory.py", "bench_trace_io.py",
           "bench_workers.py"]


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        if subprocess.run([sys.executable, str(here / script), *sys.argv[1:]]).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
