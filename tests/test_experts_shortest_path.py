from __future__ import annotations

import pytest

from hch.engine import answer
from hch.experts import ExpertPolicy
from hch.tasks.shortest_path import HEADER

pytestmark = pytest.mark.anyio
CHAIN = "\n".join([HEADER, "aa -> ab, ba", "ab -> ac", "ac -> ad", "ba -> bb"])
QUESTION = "What is the length of the shortest path from aa to ad?"  # three edges


async def test_the_root_stops_once_its_depth_cannot_settle_a_longer_bound() -> None:
    short = await answer(QUESTION, depth=2, policy=ExpertPolicy(), context=CHAIN)
    assert short.status == "guess"
    nodes = [data for _, data in short.trace.workspaces()]
    assert [d["question"] for d in nodes if d["status"] == "guess"] == [QUESTION]  # nothing below guessed
    assert not any("at most 3 edges" in d["question"] for d in nodes)  # a bound depth 1 cannot settle
    enough = await answer(QUESTION, depth=3, policy=ExpertPolicy(), context=CHAIN)
    assert (enough.answer, enough.status) == ("3", "ok")
