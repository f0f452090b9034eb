"""Cross-depth reuse must change nothing but the cost: every run answers as a standalone run would."""

from __future__ import annotations

import json

import pytest

from hch.experts import ExpertPolicy
from hch.experts.noisy import NoisyExpertPolicy
from hch.record.format import parse, to_data
from hch.run.engine import answer
from hch.run.facts import Facts
from hch.run.policy import Policy
from hch.run.subtree_cache import SubtreeCache
from hch.study.sweep_cache import SweepCache, stable_fingerprints
from hch.tasks import TASKS, get_task

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize(
    "policy", [ExpertPolicy(), ExpertPolicy(early_guess=True), NoisyExpertPolicy(noise=0.1, seed="2")],
    ids=["exact", "early-guess", "noisy"],
)
@pytest.mark.parametrize("facts", ["shown", "hidden"])
async def test_shared_runs_answer_like_standalone_runs(name: str, policy: Policy, facts: Facts) -> None:
    if facts == "hidden" and TASKS[name].oracle is None:
        pytest.skip(f"{name} has no facts to hide")
    items = get_task(name).generate(7, seed=11, facts=facts)
    cache = SweepCache(stable_fingerprints(policy, range(7)))
    for item in items:
        for depth in (6, 3, 5, 1, 0, 2):  # any order: reuse must not depend on it
            shared = await answer(item.question, depth=depth, policy=policy, context=item.context, subtree_cache=cache,
                                  facts=facts)
            alone = await answer(item.question, depth=depth, policy=policy, context=item.context, facts=facts)
            assert (shared.answer, shared.status) == (alone.answer, alone.status), (item.question, depth)
            depths = [data["depth"] for _, data in shared.trace.workspaces()]
            assert shared.trace.graph.nodes[shared.trace.root]["depth"] == depth and min(depths) >= 0
    assert cache.cross_depth_hits > 0


async def test_a_reused_subtree_is_relabelled_and_marked() -> None:
    item = next(i for i in get_task("wildcard-search").generate(20, seed=1) if i.required_depth == 2)
    policy = ExpertPolicy()
    cache = SweepCache(stable_fingerprints(policy, range(5)))
    deep = await answer(item.question, depth=4, policy=policy, context=item.context, subtree_cache=cache)
    shallow = await answer(item.question, depth=2, policy=policy, context=item.context, subtree_cache=cache)
    assert deep.summary.nodes == 7 and shallow.answer == deep.answer
    # the whole HCH_2 tree came from the HCH_4 run: nothing expanded or called here, one reuse
    assert (shallow.summary.nodes, shallow.summary.policy_calls, shallow.summary.subtree_cache_hits) == (0, 0, 1)
    assert len(list(shallow.trace.workspaces())) == 7
    root = shallow.trace.graph.nodes[shallow.trace.root]
    assert (root["depth"], root["reused_from_depth"], root["grafted"]) == (2, 4, True)
    assert sorted(d["depth"] for _, d in shallow.trace.workspaces()) == [0, 0, 0, 0, 1, 1, 2]
    assert all(c["input"]["depth"] == shallow.trace.graph.nodes[c["workspace"]]["depth"]
               for _, c in shallow.trace.calls())
    assert parse(json.dumps(to_data(shallow.trace))).graph.number_of_nodes() > 0
    too_shallow = await answer(item.question, depth=1, policy=policy, context=item.context, subtree_cache=cache)
    assert too_shallow.status == "guess"  # needs 2 levels: the depth-4 subtree does not fit at 1


async def test_guessing_subtrees_and_unstable_policies_stay_at_their_depth() -> None:
    item = next(i for i in get_task("sequential-assignments").generate(20, seed=1) if i.required_depth == 4)
    policy = ExpertPolicy()
    cache = SweepCache(set())  # nobody declared stable
    await answer(item.question, depth=6, policy=policy, context=item.context, subtree_cache=cache)
    await answer(item.question, depth=5, policy=policy, context=item.context, subtree_cache=cache)
    assert cache.cross_depth_hits == 0
    stable = SweepCache(stable_fingerprints(policy, range(7)))
    await answer(item.question, depth=3, policy=policy, context=item.context, subtree_cache=stable)
    assert stable.cross_depth_hits == 0
    assert all(key[1] != item.question for key in stable._saturated)  # its subtree guessed: not offered


async def test_prime_offers_a_saved_run() -> None:
    item = next(i for i in get_task("permutation-powering").generate(20, seed=1) if i.required_depth == 3)
    policy = ExpertPolicy()
    first = await answer(item.question, depth=5, policy=policy, context=item.context)
    cache = SweepCache(stable_fingerprints(policy, range(6)))
    assert cache.prime(parse(json.dumps(to_data(first.trace)))) == first.summary.nodes
    again = await answer(item.question, depth=3, policy=policy, context=item.context, subtree_cache=cache)
    assert again.answer == item.answer and cache.cross_depth_hits == 1
    assert not any(not data.get("grafted") for _, data in again.trace.calls())


async def test_an_empty_shared_cache_is_the_one_used() -> None:
    cache = SubtreeCache()
    assert not cache  # falsy while empty: the engine must test `is None`, not truthiness
    await answer("What is the sum of 1, 2, 3, 4?", depth=2, subtree_cache=cache)
    assert len(cache) == 3
