"""examples/reliability_study.py at a tiny size: every variant runs and its invocations are counted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import anyio
import pytest

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
    assert set(by) == {(setting, label) for setting in study.SETTINGS for label in study.variants(setting)}
    assert {label for on, label in by if on == "lookups"} == set(study.LOOKUP_VARIANTS)
    shared = study.SETTINGS[2]
    assert by[shared, "vote(P, P', P'')"].invocations == 3 * by[shared, "vote(P, P', P'')"].calls
    for on in ("all", "lookups"):
        alone, checked, three = by[on, "P alone"], by[on, "check(P, P')"], by[on, "vote:3"]
        assert alone.invocations == alone.calls and three.invocations == 3 * three.calls
        assert checked.calls < checked.invocations < 3 * checked.calls  # asks once, answers twice (plus retries)
        assert all(o.questions == 8 for o in (alone, checked, three))
    assert by["all", "vote:5"].invocations == 5 * by["all", "vote:5"].calls
    assert by["all", "vote:2"].invocations == 2 * by["all", "vote:2"].calls
    text = study.readme(outcomes, seconds=1.0)
    assert "| all | `vote:5` |" in text and "| lookups | `check(P, P')` |" in text
    assert "plain voting at the same invocations" in text and f"| {shared} | `vote(P, P', P'')` |" in text
    study.plot(outcomes, tmp_path / "plot")
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_plain_voting_at_equal_cost_is_the_best_mix_of_two_plain_votes_at_exactly_that_cost() -> None:
    study = study_module()

    def made(label: str, invocations: int, right: int) -> object:
        outcome = study.Outcome(label, label, "all", correct={"i": [True] * right + [False] * (10 - right)})
        outcome.invocations, outcome.questions = invocations, 10
        return outcome

    plain = [made("P alone", 10, 5), made("vote:2", 20, 5), made("vote:3", 30, 9), made("vote:5", 50, 10)]
    checked = made("check(P, P')", 16, 8)
    said, accuracy = study.plain_mix([*plain, checked], "all", 1.6)
    # 1.6 invocations: 0.7 of the questions alone (1 each) and 0.3 by vote:3 (3 each); vote:2 mixes are worse
    assert said == "0.70 `P alone` + 0.30 `vote:3`" and accuracy == pytest.approx(0.7 * 0.5 + 0.3 * 0.9)
    assert study.plain_mix(plain, "all", 3.0) == ("`vote:3`", pytest.approx(0.9))
    assert study.plain_mix(plain, "all", 6.0) is None  # beyond the dearest plain vote: nothing to compare with
    assert study.plain_mix(plain, "lookups", 1.6) is None
    assert "| all | `check(P, P')` | 1.6 | 0.800 | 0.70 `P alone` + 0.30 `vote:3` | 0.620 |" in "\n".join(
        study.equal_cost_table([*plain, checked]))
