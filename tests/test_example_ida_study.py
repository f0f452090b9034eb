"""The committed IDA study (examples/ida): its README agrees with its CSVs and meets the issue's bar."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

from hch.learning.report import IdaRow

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "ida"


def study() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ida_study", ROOT / "examples" / "ida_study.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed(name: str) -> list[IdaRow]:
    with (OUT / f"{name}.csv").open(encoding="utf-8") as file:
        return [IdaRow.model_validate({k: (None if v == "" else v) for k, v in row.items()})
                for row in csv.DictReader(file)]


def test_the_readme_tables_are_the_committed_csvs_and_its_prose_is_the_scripts() -> None:
    script, readme = study(), (OUT / "README.md").read_text(encoding="utf-8")
    for name in ("permutation-table", "wildcard-search-mlp", "permutation-powering-mlp"):
        assert "\n".join(script.class_table(committed(name))) in readme, name
        assert (OUT / f"{name}.png").exists() and (OUT / f"{name}.svg").exists()
    assert readme.endswith(script.COMPARISON + "\n")


def test_table_x_reaches_99_percent_on_every_class_by_amplification_alone() -> None:
    found = committed("permutation-table")
    last = max(r.round for r in found)
    final = [r for r in found if r.kind == "amplification" and r.round == last]
    assert {r.required_depth for r in final} == {None, 0, 1, 2, 3, 4, 5}
    assert all(r.accuracy >= 0.99 for r in final)
    assert all(r.h_calls > 0 and r.labels > 0 for r in final)


def test_the_mlp_runs_two_tasks_next_to_their_supervised_baseline_with_time_and_h_calls() -> None:
    for name in ("wildcard-search-mlp", "permutation-powering-mlp"):
        found = committed(name)
        last = max(r.round for r in found)
        amp, sup = ({r.required_depth: r for r in found if r.kind == kind and r.round == last}
                    for kind in ("amplification", "supervised"))
        assert amp.keys() == sup.keys() and amp[None].labels == sup[None].labels > 0
        assert amp[None].h_calls > 0 and sup[None].h_calls == 0
        assert amp[None].fit_seconds > 0 and sup[None].fit_seconds > 0
        assert amp[None].eval_in_training == 0  # held-out instances
