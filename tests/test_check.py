"""check(P, VERIFIER): answers confirmed by a verifier, retried, else marked unverified."""

from __future__ import annotations

import pytest

from hch.errors import PolicySpecError, RunAborted
from hch.policies.check import NOT_CONFIRMED, CheckPolicy, PositionalCheck, check, is_recheck
from hch.policies.positional import PositionalPolicy
from hch.policies.spec import make_policy
from hch.policies.vote import VotePolicy
from hch.run.engine import answer
from hch.run.policy import resolve
from hch.tasks import get_task
from hch.workspace import Action, Answer, Ask, Reply, Usage, Workspace

pytestmark = pytest.mark.anyio
WS = Workspace(question="q", depth=1)


class Script:
    """Answers its list in turn (one per call); records the workspaces it saw."""

    def __init__(self, *actions: Action | Exception, name: str = "p") -> None:
        self.actions, self.fingerprint, self.seen = list(actions), name, list[Workspace]()

    async def act(self, workspace: Workspace) -> Reply:
        self.seen.append(workspace)
        action = self.actions[min(len(self.seen), len(self.actions)) - 1]
        if isinstance(action, Exception):
            raise action
        return Reply(action=action, usage=Usage(prompt_tokens=5))


def said(text: str, guess: bool = False) -> Answer:
    return Answer(answer=text, guess=guess)


async def test_a_confirmed_answer_stands_and_both_invocations_count() -> None:
    policy, verifier = Script(said("4")), Script(said(" 4"), name="v")
    reply = await CheckPolicy(policy, verifier).act(WS)
    assert reply.action == said("4") and reply.invocations == 2 and reply.usage.prompt_tokens == 10
    record = reply.raw["check"]  # type: ignore[index]
    assert (record["verified"], record["retries"], len(record["rounds"])) == (True, 0, 1)
    assert verifier.seen == [WS]  # the verifier acts on the very same workspace


async def test_an_unconfirmed_answer_is_asked_again_with_the_refusal_set() -> None:
    policy, verifier = Script(said("5"), said("4")), Script(said("4"), name="v")
    reply = await CheckPolicy(policy, verifier).act(WS)
    assert reply.action == said("4") and reply.invocations == 4
    assert reply.raw["check"]["verified"] is True and reply.raw["check"]["retries"] == 1  # type: ignore[index]
    assert policy.seen[1].refusal == NOT_CONFIRMED.format(answer="5") and is_recheck(policy.seen[1].refusal)
    assert policy.seen[1].model_copy(update={"refusal": None}) == WS


async def test_still_unconfirmed_after_the_retries_it_is_returned_marked_unverified_and_counted() -> None:
    policy, verifier = Script(said("5"), said("6"), said("7")), Script(said("4"), name="v")
    reply = await CheckPolicy(policy, verifier, retries=2).act(WS)
    record = reply.raw["check"]  # type: ignore[index]
    assert reply.action == said("7") and reply.invocations == 6
    assert (record["verified"], record["retries"]) == (False, 2)
    assert [r["answer"] for r in record["rounds"]] == ["5", "6", "7"]
    assert "(retry 2 of 2)" in str(policy.seen[2].refusal)

    async def run(spec_policy: CheckPolicy) -> None:
        result = await answer("q", depth=0, policy=spec_policy)
        assert result.summary.unverified == 1 and result.summary.invocations == 6
        assert "1 unverified" in result.summary.line()

    await run(CheckPolicy(Script(said("5"), said("6"), said("7")), Script(said("4"), name="v"), retries=2))


async def test_asks_and_guesses_pass_through_unchecked() -> None:
    verifier = Script(said("4"), name="v")
    ask = await CheckPolicy(Script(Ask(questions=["a"])), verifier).act(WS)
    guess = await CheckPolicy(Script(said("9", guess=True)), verifier).act(WS)
    assert ask.action == Ask(questions=["a"]) and ask.invocations == 1 and ask.raw is None
    assert guess.action == said("9", guess=True) and guess.invocations == 1
    assert verifier.seen == []


async def test_a_verifier_that_fails_or_asks_confirms_nothing() -> None:
    failing = await CheckPolicy(Script(said("4")), Script(RuntimeError("down"), name="v"), retries=0).act(WS)
    record = failing.raw["check"]  # type: ignore[index]
    assert failing.action == said("4") and record["verified"] is False and failing.invocations == 2
    assert record["rounds"][0]["verifier_error"] == "RuntimeError: down"
    asking = await CheckPolicy(Script(said("4")), Script(Ask(questions=["x"]), name="v"), retries=0).act(WS)
    assert asking.raw["check"]["verified"] is False  # type: ignore[index]


async def test_a_verifier_that_aborts_the_run_stops_it() -> None:
    dead = RunAborted("http://127.0.0.1:9/v1 is unreachable")
    with pytest.raises(RunAborted) as caught:
        await CheckPolicy(Script(said("4")), Script(dead, name="v"), retries=0).act(WS)
    assert caught.value is dead
    with pytest.raises(RunAborted):
        await answer("q", depth=1, policy=CheckPolicy(Script(said("4")), Script(dead, name="v")))


async def test_nested_votes_inside_a_check_count_their_copies() -> None:
    policy = VotePolicy(3, Script(said("4")))
    reply = await CheckPolicy(policy, VotePolicy(2, Script(said("4"), name="v"))).act(WS)
    assert reply.invocations == 5


async def test_checking_a_noisy_expert_with_an_independent_one_repairs_its_look_ups() -> None:
    items = get_task("permutation-powering").generate(12, seed=3)
    alone = make_policy("expert(noise=0.1, seed=1)")
    checked = make_policy("check(expert(noise=0.1, seed=1), expert(noise=0.1, seed=2), retries=2)")
    right = {"alone": 0, "checked": 0}
    for item in items:
        for name, policy in (("alone", alone), ("checked", checked)):
            result = await answer(item.question, depth=6, policy=policy, context=item.context, copies="independent")
            right[name] += result.answer == item.answer
            if name == "checked":
                assert result.summary.invocations >= 2 * sum(
                    1 for _, d in result.trace.calls() if (d["output"] or {}).get("kind") == "answer"
                )
    assert right["checked"] > right["alone"]


def test_specs_and_positions() -> None:
    policy = make_policy("check(expert(noise=0.1, seed=1), expert(noise=0.1, seed=2))")
    assert isinstance(policy, CheckPolicy) and policy.retries == 1
    assert policy.fingerprint.startswith("check(expert(") and policy.fingerprint.endswith(",retries=1)")
    assert make_policy("check(vote(3, expert), expert, retries=0)").retries == 0  # type: ignore[attr-defined]
    for spec, message in [("check(expert)", "check needs a policy and a verifier"),
                          ("check", "check needs a policy and a verifier"),
                          ("check(expert, expert, retries=-1)", "retries must be a whole number"),
                          ("check(expert, nobody)", "unknown policy 'nobody'")]:
        with pytest.raises(PolicySpecError, match=message) as caught:
            make_policy(spec)
        assert "\n" not in str(caught.value)
    by_place = check(PositionalPolicy({"root": Script(said("r")), "else": Script(said("e"))}), Script(said("v")))
    assert isinstance(by_place, PositionalCheck)
    leaf = resolve(by_place, 2, True)
    assert isinstance(leaf, CheckPolicy) and leaf.policy.fingerprint == "p"


def test_check_takes_spec_strings_and_checks_its_arguments_when_built() -> None:
    built = check("expert", "expert(noise=0.1, seed=1)")
    assert isinstance(built, CheckPolicy) and built.fingerprint == check(
        make_policy("expert"), make_policy("expert(noise=0.1, seed=1)")).fingerprint
    with pytest.raises(TypeError, match=r"policy must be a Policy .* not int"):
        check("expert", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retries must be a whole number, 0 or more, not -1"):
        check(make_policy("root=expert,else=expert(noise=0.1, seed=1)"), "expert", retries=-1)
