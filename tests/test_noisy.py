from __future__ import annotations

import pytest

from hch.engine import answer
from hch.errors import PolicySpecError
from hch.experts.noisy import NoisyExpertPolicy, generic_wrong
from hch.experts.wildcard_search import WildcardExpert
from hch.policy_spec import make_policy
from hch.tasks import get_task
from hch.workspace import Answer, Ask, Reply, SubAnswer, Workspace

pytestmark = pytest.mark.anyio
ITEM = get_task("permutation-powering").generate(1, seed=5)[0]


def lookup(x: str, depth: int = 0) -> Workspace:
    return Workspace(question=f"What is sigma^1({x})?", depth=depth, context=ITEM.context)


async def test_slips_at_about_the_rate_asked_and_only_on_look_ups() -> None:
    policy = NoisyExpertPolicy(noise=0.25, seed="3")
    exact = make_policy("expert")
    slips = 0
    contexts = [item.context for item in get_task("permutation-powering").generate(40, seed=9)][::10]
    assert len(set(contexts)) == 4
    for context in contexts:
        for x in [a + b for a in "abcdefgh" for b in "abcdefgh"]:
            ws = Workspace(question=f"What is sigma^1({x})?", depth=0, context=context)
            got, want = await policy.act(ws), await exact.act(ws)
            assert isinstance(want, Answer)
            if isinstance(got, Reply):
                assert got.raw == {"noise": {"slipped": True, "correct": want.answer}}
                assert isinstance(got.action, Answer) and got.action.answer != want.answer
                slips += 1
            else:
                assert got == want
    assert 0.18 < slips / 256 < 0.32
    decompose = Workspace(question="What is sigma^6(ab)?", depth=3, context=ITEM.context)
    assert isinstance(await policy.act(decompose), Ask)  # decompositions and combinations are never noisy


async def test_slips_are_seeded_and_blind_to_depth() -> None:
    a, b, other = (NoisyExpertPolicy(noise=0.5, seed=s) for s in ("1", "1", "2"))
    runs = [[await p.act(lookup(x, depth)) for x in ("ab", "cd", "ef", "gh", "ba", "dc")] for p in (a, b, other)
            for depth in (0, 3)]
    assert runs[0] == runs[1] == runs[2] == runs[3]  # same seed: same slips, at any depth
    assert runs[0] != runs[4]


def test_replicas_slip_independently_and_say_so_in_their_fingerprints() -> None:
    policy = NoisyExpertPolicy(noise=0.1, seed="1")
    copies = [policy.replica(i) for i in range(3)]
    assert len({c.fingerprint for c in [policy, *copies]}) == 4
    assert all("noise(0.1,seed=1." in c.fingerprint for c in copies)


def test_wrong_answers_are_plausible() -> None:
    import random

    rng = random.Random(0)
    ws = Workspace(question="What is the sum of the values of the strings matching aaaaaa?", depth=0)
    assert WildcardExpert().wrong(ws, "1", rng) in {"-1", "0"}
    assert generic_wrong("10", rng) in {"8", "9", "11", "12"}
    assert generic_wrong("abc", rng) == "abc (misread)"


async def test_noise_zero_is_the_exact_expert_and_the_spec_parses() -> None:
    noisy = make_policy("expert(noise=0.02, seed=4)")
    assert isinstance(noisy, NoisyExpertPolicy) and (noisy.noise, noisy.seed) == (0.02, "4")
    quiet = make_policy("expert(permutation-powering, noise=0)")
    result = await answer(ITEM.question, depth=6, policy=quiet, context=ITEM.context)
    assert result.answer == ITEM.answer
    for spec, message in [("expert(noise=1.5)", "between 0 and 1"), ("expert(noise=x)", "must be a number"),
                          ("expert(loud=1)", "unknown expert setting 'loud'")]:
        with pytest.raises(PolicySpecError, match=message):
            make_policy(spec)


def test_a_failed_sub_answer_is_not_read_as_a_name() -> None:
    from hch.errors import PolicyError
    from hch.experts.permutation_powering import name_of

    with pytest.raises(PolicyError, match="failed"):
        name_of(SubAnswer(question="q", answer="boom", status="error"))
