"""Regenerate the example traces in this folder with the offline expert.

    python traces/examples/regenerate.py

Each example is a small run that shows one thing a trace can hold; tests replay every
one of them and check that regenerating gives the same tree (see tests/test_examples.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hch
from hch.limits import Limits
from hch.tasks import get_task

HERE = Path(__file__).resolve().parent

EXAMPLES: dict[str, dict[str, Any]] = {
    "sum-depth3": {"question": "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?", "depth": 3},
    "expression-depth1-guesses": {"question": "What is (3 + 4) * (2 + 5) - 6?", "depth": 1},
    "subtree-reuse": {"question": "What is (1 + 2) * (1 + 2) + (1 + 2)?", "depth": 3},
    "node-budget": {"question": "What is the sum of 8, 6, 7, 5, 3, 0, 9, 1, 2, 4?", "depth": 4,
                    "limits": Limits(max_nodes=5)},
    # the paper's environment: H never sees the facts; the look-ups are the environment's answers
    "permutation-hidden-facts": {"question": "What is sigma^5(ab)?", "depth": 2, "facts": "hidden",
                                 "context": get_task("permutation-powering").generate(1, seed=1)[0].context},
}


def regenerate(folder: Path = HERE) -> list[Path]:
    """Run every example and write its trace to `folder`; return the paths."""
    paths = []
    for name, spec in EXAMPLES.items():
        path = folder / f"{name}.json"
        hch.answer_sync(spec["question"], depth=spec["depth"], limits=spec.get("limits"), trace_path=path,
                        meta={"example": name}, context=spec.get("context", ""), facts=spec.get("facts", "shown"))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in regenerate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(written)
