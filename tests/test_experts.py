"""The expert policy: honest by default (asks wherever it may, guesses only where it may not); the
depth-aware early guess is a separate, named variant."""

from __future__ import annotations

import pytest
from helpers import unforced_guesses

from hch.experts import ExpertPolicy
from hch.policies.spec import make_policy
from hch.record.trace import Trace
from hch.run.engine import answer
from hch.run.facts import Facts
from hch.tasks import get_task

pytestmark = pytest.mark.anyio
SUM64 = "What is the sum of " + ", ".join(str(n) for n in range(1, 65)) + "?"  # needs depth 5
PAPER_TASKS = ["permutation-powering", "sequential-assignments", "wildcard-search", "shortest-path", "union-find"]


def first_action(trace: Trace) -> str:
    call = min(trace.node_calls(trace.root))
    return str(trace.graph.nodes[call]["output"]["kind"])


async def test_at_depth_1_it_decomposes_a_question_needing_depth_5_and_guesses_only_at_depth_0() -> None:
    result = await answer(SUM64, depth=1)
    trace = result.trace
    assert result.status == "guess" and first_action(trace) == "ask"
    children = [trace.graph.nodes[child] for child, _ in trace.children(trace.root)]
    assert [c["question"] for c in children] == [
        "What is the sum of " + ", ".join(str(n) for n in range(1, 33)) + "?",
        "What is the sum of " + ", ".join(str(n) for n in range(33, 65)) + "?",
    ]
    assert all((c["depth"], c["status"]) == (0, "guess") for c in children)
    assert unforced_guesses(trace) == []  # the root's guess only passes its halves' guesses up
    for _, call in trace.calls():  # every guess the expert made itself was where it could not ask
        if call["output"]["kind"] == "answer" and call["output"]["guess"] and not call["input"]["steps"]:
            assert call["input"]["depth"] == 0 or call["input"]["steps_left"] == 0


async def test_the_early_guess_variant_answers_the_same_question_with_one_guess() -> None:
    result = await answer(SUM64, depth=1, policy=make_policy("expert(early_guess)"))
    assert (result.status, result.summary.nodes, result.summary.policy_calls) == ("guess", 1, 1)


@pytest.mark.parametrize("facts", ["shown", "hidden"])
@pytest.mark.parametrize("name", PAPER_TASKS)
async def test_every_paper_expert_asks_at_depth_1_whatever_the_question_needs(name: str, facts: Facts) -> None:
    items = get_task(name).generate(30, seed=2, facts=facts)
    item = max(items, key=lambda i: i.required_depth or 0)
    assert (item.required_depth or 0) >= 5
    result = await answer(item.question, depth=1, context=item.context, facts=facts)
    assert result.status == "guess" and first_action(result.trace) == "ask", (name, facts)
    assert unforced_guesses(result.trace) == []


async def test_with_no_steps_left_it_guesses() -> None:
    from hch.limits import Limits

    item = next(i for i in get_task("permutation-powering").generate(20, seed=3) if i.required_depth == 2)
    result = await answer(item.question, depth=6, context=item.context, limits=Limits(max_steps_per_node=1))
    assert result.status == "guess"  # sigma^k asks its two halves one after the other: one step is too few
    root_calls = [result.trace.graph.nodes[c] for c in result.trace.node_calls(result.trace.root)]
    assert [c["input"]["steps_left"] for c in root_calls] == [1, 0] and root_calls[-1]["output"]["guess"]
    assert unforced_guesses(result.trace) == []


def test_the_variant_is_named_in_the_fingerprint_and_never_shares_cached_calls() -> None:
    honest, early = make_policy("expert"), make_policy("expert(early_guess)")
    assert isinstance(early, ExpertPolicy) and early.early_guess and not getattr(honest, "early_guess", True)
    assert early.fingerprint == honest.fingerprint + "+early_guess"
    noisy = make_policy("expert(noise=0.1, early_guess)")
    assert "+early_guess" in noisy.fingerprint and "noise(0.1" in noisy.fingerprint
    assert make_policy("expert(list, early_guess)").fingerprint == "expert(list@3)+early_guess"
