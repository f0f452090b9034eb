from __future__ import annotations

import anyio
import pytest
from helpers import FunctionPolicy

from hch.errors import PolicyError, PolicySpecError, RunAborted, Stopped
from hch.experts.noisy import NoisyExpertPolicy
from hch.policies.positional import PositionalPolicy
from hch.policies.spec import make_policy
from hch.policies.vote import PanelVote, PositionalPanel, PositionalVote, VotePolicy, panel, vote
from hch.run.engine import answer
from hch.run.policy import resolve
from hch.tasks import get_task
from hch.workspace import Action, Answer, Ask, Reply, Usage, Workspace

pytestmark = pytest.mark.anyio
WS = Workspace(question="q", depth=1)


class Fixed:
    """Copy i answers answers[i]; replica() hands out the copies."""

    def __init__(self, answers: list[str | Exception], index: int | None = None) -> None:
        self.answers, self.index = answers, index
        self.fingerprint = f"fixed{index}"

    def replica(self, index: int) -> Fixed:
        return Fixed(self.answers, index)

    async def act(self, workspace: Workspace) -> Action | Reply:
        assert self.index is not None
        value = self.answers[self.index]
        if isinstance(value, Exception):
            raise value
        return Reply(action=Answer(answer=value), usage=Usage(prompt_tokens=10, cost=0.5))


async def test_majority_wins_and_usage_adds_up() -> None:
    reply = await VotePolicy(5, Fixed(["b", "a", "a ", "c", "A"])).act(WS)
    assert reply.action == Answer(answer="a")
    record = reply.raw["vote"]  # type: ignore[index]
    assert record["counts"] == {"answer: b": 1, "answer: a": 3, "answer: c": 1}
    assert (record["tie"], record["winner_copy"], len(record["copies"])) == (False, 1, 5)
    assert (reply.usage.prompt_tokens, reply.usage.cost) == (50, 2.5)


async def test_a_tie_goes_to_the_lowest_copy_and_is_recorded() -> None:
    reply = await VotePolicy(4, Fixed(["x", "y", "y", "x"])).act(WS)
    record = reply.raw["vote"]  # type: ignore[index]
    assert reply.action == Answer(answer="x")
    assert record["tie"] is True and sorted(record["tied"]) == ["answer: x", "answer: y"]


async def test_failing_copies_abstain_and_all_failing_is_an_error() -> None:
    reply = await VotePolicy(3, Fixed([RuntimeError("down"), "z", "z"])).act(WS)
    assert reply.action == Answer(answer="z")
    assert reply.raw["vote"]["failed"] == {"0": "RuntimeError: down"}  # type: ignore[index]
    with pytest.raises(PolicyError, match="all 2 voting copies failed") as failed:
        await VotePolicy(2, Fixed([RuntimeError("a"), RuntimeError("b")])).act(WS)
    assert failed.value.invocations == 2


async def test_a_call_whose_every_copy_failed_still_counts_k_invocations() -> None:
    result = await answer("Q?", depth=0, policy=VotePolicy(3, Fixed([RuntimeError("x")] * 3)))
    assert result.status == "error"
    assert [d["invocations"] for _, d in result.trace.calls()] == [3] and result.summary.invocations == 3


class AbortsWhileOthersWait:
    """Copy 0 stops the run once the others are acting; the others would wait forever."""

    fingerprint = "aborting"

    def __init__(self, error: RunAborted, index: int | None = None, started: anyio.Event | None = None) -> None:
        self.error, self.index, self.started = error, index, started or anyio.Event()
        self.cancelled: list[int] = []

    def replica(self, index: int) -> AbortsWhileOthersWait:
        copy = AbortsWhileOthersWait(self.error, index, self.started)
        copy.cancelled = self.cancelled
        return copy

    async def act(self, workspace: Workspace) -> Action:
        if self.index == 0:
            await self.started.wait()
            raise self.error
        self.started.set()
        try:
            await anyio.sleep_forever()
        finally:
            assert self.index is not None
            self.cancelled.append(self.index)
        raise AssertionError("unreachable")


@pytest.mark.parametrize("error", [RunAborted("http://127.0.0.1:9/v1 is unreachable"), Stopped("quit")])
async def test_a_copy_that_aborts_the_run_stops_the_vote_and_its_other_copies(error: RunAborted) -> None:
    inner = AbortsWhileOthersWait(error)
    with anyio.fail_after(30), pytest.raises(type(error)) as caught:  # not a failed copy that abstains
        await VotePolicy(3, inner).act(WS)
    assert caught.value is error and sorted(inner.cancelled) == [1, 2]
    with anyio.fail_after(30), pytest.raises(RunAborted):  # in a run: the run stops, it is not a node's error
        await answer("q", depth=1, policy=VotePolicy(3, AbortsWhileOthersWait(RunAborted("dead"))))


async def test_asks_vote_too() -> None:
    async def behaviour(ws: Workspace) -> Action:
        return Ask(questions=["a", "b"])

    reply = await VotePolicy(3, FunctionPolicy(behaviour)).act(WS)
    assert reply.action == Ask(questions=["a", "b"])
    assert reply.raw["vote"]["counts"] == {"ask: a | b": 3}  # type: ignore[index]


async def test_voting_repairs_a_noisy_expert() -> None:
    items = get_task("wildcard-search").generate(14, seed=2)
    noisy = NoisyExpertPolicy(noise=0.08, seed="1")
    voted = vote(5, noisy)
    assert isinstance(voted, VotePolicy) and voted.fingerprint.startswith("vote(5,expert(")
    right = {1: 0, 5: 0}
    for item in items:
        for k, policy in ((1, noisy), (5, voted)):
            result = await answer(item.question, depth=6, policy=policy, context=item.context)
            right[k] += result.answer == item.answer
    assert right[5] == len(items) > right[1]


def test_specs_and_positions() -> None:
    assert make_policy("vote:3").fingerprint.startswith("vote(3,expert(")
    assert make_policy("vote(1, expert)").fingerprint.startswith("expert(")
    inner = make_policy("vote(3, expert(noise=0.1, seed=2))")
    assert isinstance(inner, VotePolicy) and "noise(0.1,seed=2)" in inner.fingerprint
    assert len({c.fingerprint for c in inner.copies}) == 3
    for bad in ("vote", "vote:0", "vote(0, expert)", "vote(-2, expert)", "vote(1.5)"):
        with pytest.raises(PolicySpecError, match="vote needs a number of copies"):
            make_policy(bad)
    with pytest.raises(PolicySpecError, match="unknown policy 'x'"):
        make_policy("vote(x)")  # not a number: a vote over policies, and x is none
    mixed = make_policy("vote(3, root=expert,else=expert(noise=0.5))")
    assert isinstance(mixed, PositionalVote)
    assert "noise" not in resolve(mixed, 2, True).fingerprint
    assert "noise(0.5" in resolve(mixed, 1, False).fingerprint
    assert isinstance(mixed.inner, PositionalPolicy)


# -- a vote over different policies; invocations ----------------------------------------------


class Says:
    """Always answers `text`."""

    def __init__(self, text: str) -> None:
        self.text, self.fingerprint = text, f"says({text})"

    async def act(self, workspace: Workspace) -> Action:
        return Answer(answer=self.text)


async def test_a_vote_over_different_policies_takes_their_majority_with_the_tie_rule() -> None:
    reply = await PanelVote([Says("x"), Says("y"), Says("y")]).act(WS)
    record = reply.raw["vote"]  # type: ignore[index]
    assert reply.action == Answer(answer="y") and reply.invocations == 3
    assert record["counts"] == {"answer: x": 1, "answer: y": 2} and record["winner_copy"] == 1
    tied = await PanelVote([Says("x"), Says("y")]).act(WS)
    assert tied.action == Answer(answer="x") and tied.raw["vote"]["tie"] is True  # type: ignore[index]
    assert PanelVote([Says("x"), Says("y")]).fingerprint == "vote(says(x),says(y))"


async def test_a_vote_of_the_exact_and_noisy_experts_is_right_where_the_exact_one_is_outvoted_never() -> None:
    items = get_task("wildcard-search").generate(10, seed=4)
    spec = make_policy("vote(expert, expert(noise=0.3, seed=1), expert(noise=0.3, seed=2))")
    assert isinstance(spec, PanelVote)
    assert len({c.fingerprint for c in spec.copies}) == 3  # identical members would still be separate copies
    alone = make_policy("expert(noise=0.3, seed=1)")
    right = {"panel": 0, "alone": 0}
    for item in items:
        for name, policy in (("panel", spec), ("alone", alone)):
            result = await answer(item.question, depth=6, policy=policy, context=item.context)
            right[name] += result.answer == item.answer
            if name == "panel":
                calls = [d for _, d in result.trace.calls()]
                assert all(c["invocations"] == 3 for c in calls)
                assert result.summary.invocations == 3 * result.summary.policy_calls
    assert right["panel"] > right["alone"]


async def test_nested_votes_count_every_base_invocation_and_a_failed_copy_too() -> None:
    nested = vote(3, vote(2, Fixed(["a", "a", "a"])))
    assert isinstance(nested, VotePolicy)
    reply = await nested.act(WS)
    assert reply.invocations == 6
    failing = await VotePolicy(3, Fixed([RuntimeError("down"), "z", "z"])).act(WS)
    assert failing.invocations == 3
    result = await answer("What is the sum of 1, 2, 3, 4?", depth=2, policy=make_policy("vote(2, vote(3, expert))"))
    assert {d["invocations"] for _, d in result.trace.calls()} == {6}
    assert result.summary.invocations == 6 * result.summary.policy_calls
    assert f"{result.summary.policy_calls} policy calls ({result.summary.invocations} invocations)" in (
        result.summary.line()
    )


def test_a_vote_over_policies_parses_and_resolves_positions() -> None:
    mixed = make_policy("vote(expert, expert(noise=0.1))")
    assert isinstance(mixed, PanelVote) and len(mixed.members) == 2
    assert make_policy("vote(expert)").fingerprint.startswith("expert(")  # one member is that member
    with pytest.raises(PolicySpecError, match="vote over a positional spec needs a count"):
        make_policy("vote(root=expert,else=expert)")
    with pytest.raises(PolicySpecError, match="empty member"):
        make_policy("vote(expert,,expert)")
    positional = panel([PositionalPolicy({"root": Says("r"), "else": Says("e")}), Says("e")])
    assert isinstance(positional, PositionalPanel)
    leaf = resolve(positional, 1, False)
    assert isinstance(leaf, PanelVote) and [m.fingerprint for m in leaf.members] == ["says(e)", "says(e)"]


def test_nested_votes_and_checks_in_a_vote_are_independent_copies_all_the_way_down() -> None:
    nested = make_policy("vote(2, vote(3, expert(noise=0.1, seed=1)))")
    assert isinstance(nested, VotePolicy)
    leaves = [leaf.fingerprint for inner in nested.copies for leaf in inner.copies]  # type: ignore[attr-defined]
    assert len(leaves) == len(set(leaves)) == 6
    checks = make_policy("vote(3, check(expert(noise=0.1, seed=1), expert(noise=0.1, seed=2)))")
    assert isinstance(checks, VotePolicy)
    assert len({c.fingerprint for c in checks.copies}) == 3
    panels = make_policy("vote(2, vote(expert(noise=0.1), expert(noise=0.2)))")
    assert isinstance(panels, VotePolicy) and len({c.fingerprint for c in panels.copies}) == 2


@pytest.mark.parametrize("spec", ["vote(1001)", "vote(1000000000, expert)", "vote:99999999999"])
def test_a_vote_too_large_is_refused_before_any_copy_is_made(spec: str) -> None:
    with pytest.raises(PolicySpecError, match="at most 1000 copies per vote"):
        make_policy(spec)
    with pytest.raises(PolicySpecError, match="too large"):
        vote(10**9, NoisyExpertPolicy())
    assert vote(1000, NoisyExpertPolicy()).fingerprint.startswith("vote(1000,")


async def test_vote_and_panel_take_spec_strings_and_check_their_arguments_when_built() -> None:
    voted = vote(3, "expert")
    assert isinstance(voted, VotePolicy) and voted.fingerprint == vote(3, make_policy("expert")).fingerprint
    assert (await answer("What is the sum of 1, 2, 3, 4?", depth=2, policy=voted)).answer == "10"
    assert isinstance(panel(["expert", "expert(noise=0.1, seed=1)", "expert(noise=0.1, seed=2)"]), PanelVote)
    with pytest.raises(TypeError, match=r"policy must be a Policy .* not int"):
        vote(3, 5)  # type: ignore[arg-type]
    with pytest.raises(PolicySpecError, match="unknown policy 'nonsense'"):
        vote(3, "nonsense")
    with pytest.raises(ValueError, match=r"whole number of copies, at least 1, not 2\.5"):
        vote(2.5, "expert")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty list of them, not 'expert'"):
        panel("expert")


def test_a_vote_sees_the_facts_only_when_every_copy_does() -> None:
    from hch.run.facts import sees_facts

    class Learned:
        sees_facts = True
        fingerprint = "learned"

        async def act(self, workspace: Workspace) -> Answer:
            return Answer(answer=workspace.context)

    assert sees_facts(VotePolicy(3, Learned()))  # type: ignore[arg-type]
    assert not sees_facts(VotePolicy(3, NoisyExpertPolicy()))
    assert not sees_facts(panel([Learned(), "expert"]))  # type: ignore[list-item]


async def test_a_vote_of_a_model_that_sees_the_facts_is_shown_them_with_facts_hidden() -> None:
    class Learned:
        sees_facts = True
        fingerprint = "learned"

        async def act(self, workspace: Workspace) -> Answer:
            return Answer(answer=str(len(workspace.context.splitlines())))

    item = next(i for i in get_task("permutation-powering").generate(10, 0) if i.required_depth)
    result = await answer(item.question, depth=0, policy=VotePolicy(3, Learned()), context=item.context,  # type: ignore[arg-type]
                          facts="hidden")
    lines = len(item.context.splitlines())
    assert lines > 1 and result.answer == str(lines)  # every fact line, not the header alone
