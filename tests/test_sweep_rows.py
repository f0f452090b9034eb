from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from hch.study.rows import Row, aggregate, variant_label, write_csv
from hch.study.stats import wilson
from hch.study.sweep import RunRecord


def run(id: str, correct: bool | None, instance: str | None = None, votes: int = 1, depth: int = 2,
        **figures: Any) -> RunRecord:
    base: dict[str, Any] = {
        "votes": votes, "policy": "fp", "id": id, "depth": depth, "required_depth": 1, "instance": instance,
        "question": "q", "gold": None if correct is None else "a", "answer": "a", "status": "ok",
        "correct": correct, "guess_on_path": False, "nodes": 1, "calls": 2, "calls_made": 2,
        "invocations": 2 * votes, "invocations_made": 2 * votes, "call_cache_hits": 0, "subtree_hits": 0,
        "tokens": 0, "cost": 0.0, "tokens_spent": 0, "cost_spent": 0.0, "wall_time": 0.1, "trace": "t",
    }
    return RunRecord.model_validate({**base, **figures})


def test_variants_are_named_by_their_spec() -> None:
    assert variant_label("expert(early_guess)", 1) == "expert(early_guess)"
    assert variant_label("expert(early_guess)", 5) == "vote:5"
    assert variant_label("", 1) == "policy"
    assert variant_label("vote:3", 5) == "vote(5, vote:3)"  # a vote of votes
    records = [run("a", True), run("a", True, votes=5)]
    assert [r.variant for r in aggregate(records, policy="expert")] == ["expert", "vote:5"]


def test_invocations_are_counted_next_to_calls() -> None:
    records = [run("a", True), run("b", True, invocations=6, invocations_made=0, calls_made=0),
               run("a", True, votes=5), run("b", True, votes=5)]
    alone, voted = aggregate(records)
    assert (alone.calls_mean, alone.invocations_mean, alone.invocations_median) == (2.0, 4.0, 4.0)
    assert (alone.calls_made, alone.invocations_made) == (2, 2)
    assert (voted.calls_mean, voted.invocations_mean, voted.invocations_made) == (2.0, 10.0, 20)


def test_guess_free_accuracy_counts_an_answer_resting_on_a_guess_as_wrong() -> None:
    records = [run("a", True), run("b", True, guess_on_path=True), run("c", False, guess_on_path=True),
               run("d", None, guess_on_path=True)]
    (row,) = aggregate(records)
    assert (row.graded, row.correct, row.guess_free, row.guessed_on_path) == (3, 2, 1, 3)
    assert row.accuracy == pytest.approx(2 / 3) and row.guess_free_accuracy == pytest.approx(1 / 3)
    assert (row.guess_free_low, row.guess_free_high) == wilson(1, 3)


def test_intervals_resample_instances() -> None:
    # 60 questions, 30 right: from 60 instances (Wilson) or from 6 instances of 10 with 9, 1, 8, 2,
    # 7 and 3 right (a bootstrap over the six instances, much wider)
    spread = [run(f"q{n}", n % 2 == 0, instance=f"i{n}") for n in range(60)]
    rights = (9, 1, 8, 2, 7, 3)
    clustered = [run(f"c{i}-{n}", n < right, instance=f"c{i}") for i, right in enumerate(rights) for n in range(10)]
    (wide,) = aggregate(clustered)
    (narrow,) = aggregate(spread)
    assert (narrow.ci_method, narrow.instances) == ("wilson", 60)
    assert (wide.ci_method, wide.instances) == ("bootstrap", 6)
    assert wide.accuracy == narrow.accuracy == 0.5
    assert (wide.ci_high or 0) - (wide.ci_low or 0) > (narrow.ci_high or 0) - (narrow.ci_low or 0)
    assert aggregate(clustered) == aggregate(clustered)  # seeded: the same interval every time


def test_questions_without_an_instance_are_their_own() -> None:
    alone = [run(f"q{n}", n % 3 == 0) for n in range(4)]
    (row,) = aggregate([*alone, run("c", True, instance="x"), run("d", False, instance="x")])
    assert row.instances == 5 and row.ci_method == "bootstrap"
    (few,) = aggregate([run("a", True), run("c", True, instance="x"), run("d", False, instance="x")])
    assert (few.instances, few.ci_method) == (2, "wilson-instances")


def test_rows_by_required_depth_and_ungraded_rows() -> None:
    records = [run("a", True, required_depth=0), run("b", False, required_depth=3), run("c", None, required_depth=None)]
    assert [(r.required_depth, r.accuracy) for r in aggregate(records, by_bucket=True)] == [(0, 1.0), (3, 0.0)]
    (ungraded,) = aggregate([run("c", None)])
    assert (ungraded.accuracy, ungraded.ci_low, ungraded.guess_free_accuracy) == (None, None, None)
    assert ungraded.ci_method == ""


def test_the_csv_has_every_field_and_empty_cells_for_none(tmp_path: Path) -> None:
    rows = aggregate([run("a", True), run("c", None, depth=3)], policy="expert")
    write_csv(rows, tmp_path / "rows.csv")
    read = list(csv.DictReader((tmp_path / "rows.csv").open()))
    assert list(read[0]) == list(Row.model_fields)
    assert read[0]["invocations_mean"] == "2.0" and read[0]["variant"] == "expert"
    assert read[1]["accuracy"] == "" and read[1]["guess_free_accuracy"] == ""
