from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from hch.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]


def study() -> ModuleType:
    spec = importlib.util.spec_from_file_location("depth_sweep_study", ROOT / "examples" / "depth_sweep_study.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_both_readmes_carry_the_table_of_departures_from_the_paper() -> None:
    table = study().departures()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| task")]
    assert {row.split(" | ")[0].removeprefix("| ").split(" (")[0] for row in rows} == {
        "every task", *(name.replace("-", " ") for name in TASKS)}
    assert "after the paper" in table and "proposals" in table
    assert table in (ROOT / "examples" / "depth-sweep" / "README.md").read_text(encoding="utf-8")
