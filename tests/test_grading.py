from __future__ import annotations

import pytest

from hch.study.grading import grade, last_number, normalize


def test_exact_folds_case_space_quotes_and_a_final_period() -> None:
    assert normalize('  "Paris".  ') == "paris"
    assert grade("The  answer", "the answer", "exact")
    assert grade("Paris.", "paris")
    assert not grade("Paris, France", "Paris")


def test_numeric_reads_the_last_number_within_tolerance() -> None:
    assert last_number("about 1,234.5 units") == 1234.5
    assert grade("The answer is 42.", "42", "numeric")
    assert grade("3.14159", "3.1416", "numeric", tolerance=1e-4)
    assert not grade("3.2", "3.1416", "numeric", tolerance=1e-4)
    assert not grade("no number here", "1", "numeric")
    assert grade("1e3", "1000", "numeric")


def test_regex_must_match_the_whole_answer() -> None:
    assert grade("Answer: 12", r"answer: \d+", "regex")
    assert not grade("Answer: 12 apples", r"answer: \d+", "regex")


def test_contains_and_missing_gold() -> None:
    assert grade("It is Paris, in France", "paris", "contains")
    assert not grade("Lyon", "paris", "contains")
    assert grade("anything", None) is None
    assert grade(None, "x") is False


@pytest.mark.parametrize("grader", ["exact", "numeric", "regex", "contains"])
def test_every_grader_accepts_the_gold_answer_itself(grader: str) -> None:
    assert grade("42", "42", grader)
