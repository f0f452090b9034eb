from __future__ import annotations

import pytest

import hch
from hch.experts import ExpertPolicy
from hch.policies.vote import vote

pytestmark = pytest.mark.anyio

QUESTION = "What is the sum of 1, 2, 3, 10?"  # the root asks two halves: 3 nodes, 4 calls


async def test_a_vote_of_three_is_three_invocations_per_call() -> None:
    result = await hch.answer(QUESTION, depth=2, policy=vote(3, ExpertPolicy()))
    summary = result.summary
    assert (summary.policy_calls, summary.invocations) == (4, 12)
    assert "4 policy calls (12 invocations)" in summary.line()


async def test_one_copy_is_one_invocation_per_call_and_the_line_says_it_once() -> None:
    summary = (await hch.answer(QUESTION, depth=2, policy=ExpertPolicy())).summary
    assert (summary.policy_calls, summary.invocations) == (4, 4)
    assert "4 policy calls · " in summary.line() and "invocation" not in summary.line()
