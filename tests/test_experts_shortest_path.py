from __future__ import annotations

import pytest
from helpers import unforced_guesses

from hch.experts import ExpertPolicy
from hch.run.engine import answer
from hch.tasks.shortest_path import HEADER

pytestmark = pytest.mark.anyio
CHAIN = "\n".join([HEADER, "aa -> ab, ba", "ab -> ac", "ac -> ad", "ba -> bb"])
QUESTION = "What is the length of the shortest path from aa to ad?"  # three edges


async def test_below_its_depth_the_root_asks_on_and_passes_the_first_guessed_bound_up() -> None:
    short = await answer(QUESTION, depth=2, policy=ExpertPolicy(), context=CHAIN)
    assert short.status == "guess"
    nodes = [data for _, data in short.trace.workspaces()]
    assert any("at most 3 edges" in d["question"] for d in nodes)  # asked, though depth 1 cannot settle it
    assert not any("at most 4 edges" in d["question"] for d in nodes)  # bound 3 came back a guess: stop
    assert unforced_guesses(short.trace) == []


async def test_the_early_guess_variant_stops_once_its_depth_cannot_settle_a_longer_bound() -> None:
    short = await answer(QUESTION, depth=2, policy=ExpertPolicy(early_guess=True), context=CHAIN)
    assert short.status == "guess"
    nodes = [data for _, data in short.trace.workspaces()]
    assert [d["question"] for d in nodes if d["status"] == "guess"] == [QUESTION]  # nothing below guessed
    assert not any("at most 3 edges" in d["question"] for d in nodes)  # a bound depth 1 cannot settle
    enough = await answer(QUESTION, depth=3, policy=ExpertPolicy(early_guess=True), context=CHAIN)
    assert (enough.answer, enough.status) == ("3", "ok")
