from __future__ import annotations

import ast
from fractions import Fraction

import pytest

import hch
from hch.errors import QuestionError
from hch.experts import ExpertPolicy
from hch.experts.arithmetic import parse_expression, parse_list, required_depth


@pytest.mark.parametrize(
    ("question", "parsed"),
    [
        ("What is the sum of 3, 1, 4?", ("sum", [3, 1, 4])),
        ("the PRODUCT of 2 and 3", ("product", [2, 3])),
        ("What is the max of -1, 2.5, 0?", ("maximum", [-1, Fraction("2.5"), 0])),
        ("What is the minimum of 7?", ("minimum", [7])),
        ("What is the sum of apples?", None),
    ],
)
def test_list_questions_parse(question: str, parsed: object) -> None:
    assert parse_list(question) == parsed


@pytest.mark.parametrize(
    ("question", "depth"),
    [("What is 3 + 4?", 0), ("(3 + 4) * 2", 1), ("What is (3 + 4) * (10 - 2 * 3)?", 2), ("7", 0)],
)
def test_expressions_parse_and_know_their_required_depth(question: str, depth: int) -> None:
    tree = parse_expression(question)
    assert isinstance(tree, ast.expr)
    assert required_depth(tree) == depth


@pytest.mark.parametrize("question", ["What is 2 ** 10?", "__import__('os')", "What is 3 +?", "Why?"])
def test_anything_but_plain_arithmetic_is_not_an_expression(question: str) -> None:
    assert parse_expression(question) is None


@pytest.mark.parametrize(
    ("question", "needed", "gold"),
    [
        ("What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?", 2, "31"),
        ("What is the product of 1, 2, 3, 4, 5?", 2, "120"),
        ("What is the maximum of 4, 8, 1, 9, 2?", 2, "9"),
        ("What is the minimum of 4, 8, 1?", 1, "1"),
        ("What is (3 + 4) * (10 - 2 * 3)?", 2, "28"),
        ("What is 7 / 2 - 1?", 1, "2.5"),
    ],
)
def test_right_at_the_required_depth_and_guessing_below_it(question: str, needed: int, gold: str) -> None:
    for depth in range(needed, needed + 2):
        result = hch.answer_sync(question, depth=depth)
        assert (result.answer, result.status) == (gold, "ok")
    below = hch.answer_sync(question, depth=needed - 1)
    assert below.status == "guess"


def test_guesses_are_deterministic() -> None:
    first = hch.answer_sync("What is the sum of 10, 20, 30, 40?", depth=0)
    second = hch.answer_sync("What is the sum of 10, 20, 30, 40?", depth=0)
    assert first.answer == second.answer


def test_division_by_zero_is_a_node_error() -> None:
    result = hch.answer_sync("What is 1 / (2 - 2)?", depth=2)
    assert result.status == "error"
    assert "division by zero" in result.answer


def test_an_unknown_question_names_the_known_forms() -> None:
    with pytest.raises(QuestionError) as info:
        ExpertPolicy().check("Why is the sky blue?", "")
    message = str(info.value)
    assert "What is the sum of" in message and "--policy llm" in message
