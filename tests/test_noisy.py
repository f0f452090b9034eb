from __future__ import annotations

import pytest

from hch.errors import PolicySpecError
from hch.experts.noisy import NoisyExpertPolicy, generic_wrong
from hch.experts.wildcard_search import WildcardExpert
from hch.policies.spec import make_policy
from hch.run.engine import answer
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


# -- copies, correlation, noise on every action ---------------------------------------------------

ASKS = 400


def binomial_bounds(n: int, p: float, mass: float = 0.001) -> tuple[int, int]:
    """The central interval holding all but `mass` of Binomial(n, p) (half on each side)."""
    from math import comb

    pmf = [comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    low, below = 0, 0.0
    while below + pmf[low] <= mass / 2:
        below += pmf[low]
        low += 1
    high, above = n, 0.0
    while above + pmf[high] <= mass / 2:
        above += pmf[high]
        high -= 1
    return low, high


async def same_lookup_everywhere(noisy: NoisyExpertPolicy, copies: str) -> list[str]:
    """The answers of ASKS copies of HCH_0 all asked the same look-up, at different places of one tree."""
    from helpers import FunctionPolicy

    from hch.limits import Limits
    from hch.policies.positional import PositionalPolicy

    async def asker(ws: Workspace) -> Ask | Answer:
        return Ask(questions=[lookup("ab").question] * ASKS) if not ws.steps else Answer(answer="done")

    policy = PositionalPolicy({"root": FunctionPolicy(asker, "asker"), "else": noisy})
    result = await answer("root", depth=1, policy=policy, context=ITEM.context, copies=copies,  # type: ignore[arg-type]
                          limits=Limits(max_asks_per_step=ASKS))
    root = result.trace.root
    return [result.trace.graph.nodes[child]["answer"] for child in result.trace.graph.successors(root)
            if result.trace.graph.nodes[child]["kind"] == "workspace"] or ["<merged>"]


async def test_independent_copies_slip_as_often_as_the_noise_rate_and_merged_ones_never_disagree() -> None:
    right = (await make_policy("expert").act(lookup("ab")))
    assert isinstance(right, Answer)
    for noise in (0.1, 0.3):
        answers = await same_lookup_everywhere(NoisyExpertPolicy(noise=noise, seed="7"), "independent")
        assert len(answers) == ASKS  # every place is its own copy
        wrong = sum(a != right.answer for a in answers)
        low, high = binomial_bounds(ASKS, noise)
        assert low <= wrong <= high, (noise, wrong, low, high)
    merged = await hch_answers_merged(NoisyExpertPolicy(noise=0.3, seed="7"))
    assert len(set(merged)) == 1  # one copy answered every place: never a disagreement


async def hch_answers_merged(noisy: NoisyExpertPolicy) -> list[str]:
    from helpers import FunctionPolicy

    from hch.limits import Limits
    from hch.policies.positional import PositionalPolicy

    async def asker(ws: Workspace) -> Ask | Answer:
        if not ws.steps:
            return Ask(questions=[lookup("ab").question] * ASKS)
        return Answer(answer="|".join(sub.answer for sub in ws.answers))

    policy = PositionalPolicy({"root": FunctionPolicy(asker, "asker"), "else": noisy})
    result = await answer("root", depth=1, policy=policy, context=ITEM.context, limits=Limits(max_asks_per_step=ASKS))
    answers = result.answer.split("|")
    assert len(answers) == ASKS and result.summary.nodes == 2
    return answers


async def test_correlation_one_makes_every_copy_slip_alike_and_zero_makes_them_independent() -> None:
    right = await make_policy("expert").act(lookup("ab"))
    assert isinstance(right, Answer)
    together = await same_lookup_everywhere(NoisyExpertPolicy(noise=0.5, seed="3", correlation=1), "independent")
    assert len(together) == ASKS and len(set(together)) == 1  # the shared draw: all right or all the same slip
    apart = await same_lookup_everywhere(NoisyExpertPolicy(noise=0.5, seed="3", correlation=0), "independent")
    low, high = binomial_bounds(ASKS, 0.5)
    assert low <= sum(a != right.answer for a in apart) <= high
    half = await same_lookup_everywhere(NoisyExpertPolicy(noise=0.5, seed="3", correlation=0.5), "independent")
    shared = together[0]  # with R = 0.5 about half the copies give the shared draw's answer, the rest draw their own
    low, high = binomial_bounds(ASKS, 0.5 + 0.5 * (0.5 if shared == right.answer else 0.5 / 63))
    assert low <= sum(a == shared for a in half) <= high


async def test_replicas_share_a_slip_with_correlation_one() -> None:
    policy = NoisyExpertPolicy(noise=0.5, seed="1", correlation=1)
    copies = [policy.replica(i) for i in range(5)]
    for x in ("ab", "cd", "ef", "gh", "ba", "dc"):
        assert len({str(await c.act(lookup(x))) for c in copies}) == 1


def sum_workspace(numbers: list[int], steps: bool, copy: str = "") -> Workspace:
    question = "What is the sum of " + ", ".join(map(str, numbers)) + "?"
    if not steps:
        return Workspace(question=question, depth=2, copy=copy)
    half = len(numbers) // 2
    subs = tuple(SubAnswer(question=f"What is the sum of {', '.join(map(str, part))}?", answer=str(sum(part)))
                 for part in (numbers[:half], numbers[half:]))
    return Workspace(question=question, depth=2, steps=(subs,), copy=copy)


async def test_on_all_corrupts_combinations_and_subquestions_of_its_own_honest_action() -> None:
    exact = make_policy("expert")
    noisy = NoisyExpertPolicy(noise=0.3, seed="5", on="all")
    slips = {"combination": 0, "ask": 0}
    trials = 200
    for i in range(trials):
        numbers = [i, i + 1, 2 * i, 7]
        for kind, ws in (("combination", sum_workspace(numbers, True)), ("ask", sum_workspace(numbers, False))):
            honest, got = await exact.act(ws), await noisy.act(ws)
            if not isinstance(got, Reply):
                assert got == honest
                continue
            slips[kind] += 1
            record = got.raw["noise"]  # type: ignore[index]
            assert record["kind"] == kind and record["slipped"] is True
            if isinstance(honest, Answer):
                assert record["correct"] == honest.answer != got.action.answer  # type: ignore[union-attr]
            else:
                assert isinstance(got.action, Ask) and record["correct"] == honest.questions
                differing = [(a, b) for a, b in zip(got.action.questions, honest.questions, strict=True) if a != b]
                assert len(differing) == 1  # one subquestion asked wrongly, one number in it moved by 1
    low, high = binomial_bounds(trials, 0.3)
    assert all(low <= n <= high for n in slips.values()), slips
    lookups_only = NoisyExpertPolicy(noise=1, seed="5")
    combining = sum_workspace([1, 2, 3, 4], True)
    assert await lookups_only.act(combining) == await exact.act(combining)


async def test_wrong_answers_uniform_plausible_or_popular() -> None:
    async def spread(wrong: str) -> set[str]:
        base = NoisyExpertPolicy(noise=1, seed="9", wrong=wrong)  # type: ignore[arg-type]
        replies = [await base.replica(i).act(lookup("ab")) for i in range(40)]
        return {r.action.answer for r in replies if isinstance(r, Reply) and isinstance(r.action, Answer)}

    right = await make_policy("expert").act(lookup("ab"))
    uniform = await spread("uniform")
    assert isinstance(right, Answer) and len(uniform) > 10 and right.answer not in uniform
    assert len(await spread("plausible")) == 2  # the same two near-misses for every copy
    assert len(await spread("popular")) == 1  # one popular wrong answer
    assert "wrong=popular" in NoisyExpertPolicy(noise=1, wrong="popular").fingerprint


async def test_a_checks_retry_is_the_work_done_again_with_a_fresh_draw() -> None:
    from hch.policies.check import NOT_CONFIRMED

    noisy = NoisyExpertPolicy(noise=0.5, seed="4")
    draws = set()
    for retry in range(1, 9):
        refusal = NOT_CONFIRMED.format(answer="zz") + f" (retry {retry} of 8)"
        got = await noisy.act(lookup("ab").model_copy(update={"refusal": refusal}))
        draws.add(str(got))
    assert len(draws) > 1  # each retry draws its slip anew (a plain refusal would be read as "guess")


def test_new_settings_parse_and_bad_ones_are_one_line_errors() -> None:
    noisy = make_policy("expert(noise=0.1, seed=2, on=all, wrong=popular, correlation=0.25)")
    assert isinstance(noisy, NoisyExpertPolicy)
    assert (noisy.on, noisy.wrong, noisy.correlation) == ("all", "popular", 0.25)
    assert noisy.fingerprint.endswith("+noise(0.1,seed=2,on=all,wrong=popular,correlation=0.25)")
    assert make_policy("expert(noise=0.1)").fingerprint.endswith("+noise(0.1,seed=0)")  # as before
    for spec, message in [("expert(noise=0.1, on=asks)", "on= must be one of lookups, all"),
                          ("expert(noise=0.1, wrong=far)", "wrong= must be one of uniform, plausible, popular"),
                          ("expert(noise=0.1, correlation=2)", "correlation must be between 0 and 1"),
                          ("expert(noise=0.1, correlation=x)", "correlation must be a number")]:
        with pytest.raises(PolicySpecError, match=message) as caught:
            make_policy(spec)
        assert "\n" not in str(caught.value)
