"""Shared helpers of the benchmark scripts: the machine, timing, and the JSON results file."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: --quick (tiny sizes, for the smoke test) and --out."""
    parse = argparse.ArgumentParser(description=description)
    parse.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs, measures nothing")
    parse.add_argument("--out", type=Path, default=None, help="where to write the JSON results")
    return parse


def positive(text: str) -> int:
    """A count option (runs, sizes): a whole number of at least 1 (a one-line error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, not {value}")
    return value


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def best_of(repeats: int, run: Callable[[], Any]) -> float:
    """The fastest of `repeats` timings of `run()`, in seconds (the least disturbed by noise)."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def write(name: str, quick: bool, out: Path | None, figures: dict[str, Any]) -> Path:
    """Write the results of benchmark `name` as JSON and return the file's path."""
    path = out or RESULTS / (f"{name}.quick.json" if quick else f"{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "quick": quick,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **figures,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"results: {path}")
    return path


class ExactTree:
    """An instant policy expanding exactly N distinct nodes: ask with question "0-(N-1)".

    A node owning ids lo..hi answers if lo == hi, else splits lo+1..hi into up to 4 ranges
    and asks one subquestion per range (one step), then answers.
    """

    fingerprint = "bench-exact"
    branching = 4

    async def act(self, workspace: Any) -> Any:
        from hch.workspace import Answer, Ask

        lo, hi = map(int, workspace.question.split("-"))
        if workspace.steps or hi == lo:
            return Answer(answer="done")
        share = -(-(hi - lo) // self.branching)
        return Ask(questions=[f"{a}-{min(a + share - 1, hi)}" for a in range(lo + 1, hi + 1, share)])


def exact_tree_depth(size: int) -> int:
    """A depth at which `ExactTree` is never cut short for `size` nodes."""
    depth, reach = 0, 1
    while reach < size:
        depth, reach = depth + 1, reach * ExactTree.branching + 1
    return depth + 1


def verdict(value: float, target: float) -> str:
    """`ok` when `value` is at most `target`, else `MISSED`."""
    return "ok" if value <= target else "MISSED"
