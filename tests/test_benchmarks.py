"""Each benchmark script runs in --quick mode and writes valid JSON results (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = ["bench_overhead.py", "bench_concurrency.py", "bench_caching.py", "bench_memory.py", "bench_trace_io.py",
           "bench_workers.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_and_writes_json(script: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["quick"] is True and result["machine"]["nproc"] >= 1
    assert isinstance(result["met"], bool)
    assert result["benchmark"] in script and "target" in done.stdout


def test_a_count_option_below_one_is_refused_in_one_line() -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_overhead.py"), "--repeats", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("argument --repeats: expected at least 1, not 0")


def test_run_all_lists_every_benchmark() -> None:
    listed = sorted(path.name for path in BENCHMARKS.glob("bench_*.py"))
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert sorted(script for script, *_ in run_all.SCRIPTS) == listed
    assert run_all.FLAT[0] in listed
