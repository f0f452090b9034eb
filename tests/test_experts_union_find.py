from __future__ import annotations

import pytest
from helpers import unforced_guesses

from hch.experts import ExpertPolicy
from hch.run.engine import answer
from hch.tasks.union_find import HEADER

pytestmark = pytest.mark.anyio
# aa - ab - ac - ad (root, value 5), and a dead end aa - ae
TREE = "\n".join([HEADER, "aa = ab", "ac = ab", "ac = ad", "ae = aa", "ad has value 5"])
QUESTION = "What is the value of aa?"


async def test_each_round_searches_one_step_further_and_drops_closed_directions() -> None:
    result = await answer(QUESTION, depth=3, policy=ExpertPolicy(), context=TREE)
    assert (result.answer, result.status) == ("5", "ok")
    asked = [data["question"] for _, data in result.trace.workspaces()]
    assert "What is the value of ae, looking away from aa, within 0 steps?" in asked
    assert not any(q.startswith("What is the value of ae") and "within 0" not in q for q in asked)
    assert all(data["status"] == "ok" for _, data in result.trace.workspaces())


async def test_below_its_depth_the_root_asks_another_round_and_passes_its_guess_up() -> None:
    result = await answer(QUESTION, depth=2, policy=ExpertPolicy(), context=TREE)
    assert result.status == "guess"
    nodes = [data for _, data in result.trace.workspaces()]
    assert any("within 2 steps" in d["question"] for d in nodes)
    assert unforced_guesses(result.trace) == []


async def test_below_its_depth_the_early_guess_root_guesses_after_the_rounds_it_can_afford() -> None:
    result = await answer(QUESTION, depth=2, policy=ExpertPolicy(early_guess=True), context=TREE)
    assert result.status == "guess"
    nodes = [data for _, data in result.trace.workspaces()]
    assert [d["question"] for d in nodes if d["status"] == "guess"] == [QUESTION]
    assert not any("within 2 steps" in d["question"] for d in nodes)


async def test_the_unbounded_form_is_still_answered() -> None:
    result = await answer("What is the value of ab, looking away from aa?", depth=2, policy=ExpertPolicy(),
                          context=TREE)
    assert (result.answer, result.status) == ("5", "ok")
