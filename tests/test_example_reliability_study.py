"""examples/reliability_study.py at a tiny size: every variant runs and its invocations are counted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import anyio

ROOT = Path(__file__).resolve().parents[1]


def study_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reliability_study", ROOT / "examples" / "reliability_study.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_study_core_counts_a_vote_of_k_as_k_and_a_check_as_both_policies(tmp_path: Path) -> None:
    study = study_module()
    outcomes = anyio.run(lambda: study.study(questions=8, depth=3))
    by = {(o.on, o.label): o for o in outcomes}
    assert set(by) == {("all", label) for label in study.variants()} | {
        ("lookups", label) for label in study.LOOKUP_VARIANTS}
    for on in ("all", "lookups"):
        alone, checked, three = by[on, "P alone"], by[on, "check(P, P')"], by[on, "vote:3"]
        assert alone.invocations == alone.calls and three.invocations == 3 * three.calls
        assert checked.calls < checked.invocations < 3 * checked.calls  # asks once, answers twice (plus retries)
        assert all(o.questions == 8 for o in (alone, checked, three))
    assert by["all", "vote:5"].invocations == 5 * by["all", "vote:5"].calls
    assert by["all", "vote:2"].invocations == 2 * by["all", "vote:2"].calls
    text = study.readme(outcomes, seconds=1.0)
    assert "| all | `vote:5` |" in text and "| lookups | `check(P, P')` |" in text
    study.plot(outcomes, tmp_path / "plot")
    assert (tmp_path / "plot.png").stat().st_size > 0
