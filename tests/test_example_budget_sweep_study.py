from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def study() -> ModuleType:
    spec = importlib.util.spec_from_file_location("budget_sweep_study", ROOT / "examples" / "budget_sweep_study.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_study_is_what_the_script_writes() -> None:
    module = study()
    readme = (ROOT / "examples" / "budget-sweep" / "README.md").read_text(encoding="utf-8")
    assert "python examples/budget_sweep_study.py" in readme
    for line in module.CURVES:
        assert line in readme
    for name in ("arithmetic", "permutation-powering", "sequential-assignments", "wildcard-search", "shortest-path",
                 "union-find"):
        assert f"### {name} (facts {module.facts_of(name)})" in readme
    for suffix in ("png", "svg"):
        assert (ROOT / "examples" / "budget-sweep" / f"budget-sweep.{suffix}").stat().st_size > 10_000
    module.require()  # this hch has what the study needs
