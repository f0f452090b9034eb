from __future__ import annotations

import pytest
from helpers import unforced_guesses

from hch.experts import ExpertPolicy
from hch.run.engine import Result, answer
from hch.tasks.sequential_assignments import HEADER

pytestmark = pytest.mark.anyio
# ac needs 1 level, ad 2, ae 3
PROGRAM = "\n".join([HEADER, "aa = 1", "ab = 2", "ac = f(aa, ab)", "ad = f(ac, aa)", "ae = f(ad, ab)",
                     "f(1, 2) = 3", "f(3, 1) = 4", "f(4, 2) = 6"])


def questions(result: Result) -> list[str]:
    return [data["question"] for _, data in result.trace.workspaces()]


async def test_with_one_level_left_it_still_asks_the_values_and_passes_a_guess_up() -> None:
    result = await answer("What is the value of ad?", depth=1, policy=ExpertPolicy(), context=PROGRAM)
    assert result.status == "guess"
    asked = questions(result)
    assert "What is the value of ac?" in asked and not any(q.startswith("What is f(") for q in asked)
    assert unforced_guesses(result.trace) == []  # only ac, at depth 0, guessed on its own


async def test_the_early_guess_variant_guesses_at_once_with_one_level_left_and_a_variable_operand() -> None:
    result = await answer("What is the value of ad?", depth=1, policy=ExpertPolicy(early_guess=True), context=PROGRAM)
    assert result.status == "guess"
    assert not any(q.startswith("What is the value of a") and q != "What is the value of ad?"
                   for q in questions(result))  # the operands were looked up, no value asked


async def test_a_guessed_operand_value_ends_the_node_before_the_table() -> None:
    result = await answer("What is the value of ae?", depth=2, policy=ExpertPolicy(), context=PROGRAM)
    assert result.status == "guess"
    asked = questions(result)
    assert "What is the value of ad?" in asked and not any(q.startswith("What is f(") for q in asked)
    enough = await answer("What is the value of ae?", depth=3, policy=ExpertPolicy(), context=PROGRAM)
    assert (enough.answer, enough.status) == ("6", "ok")
