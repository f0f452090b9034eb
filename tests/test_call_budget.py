"""Budgeted HCH: shares, the engine's accounting (given, returned, spent), caching and the experts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import FunctionPolicy

import hch
from hch.record import format as trace_format
from hch.record.trace import Trace
from hch.review.replay import replay
from hch.run.call_budget import MAX_BUDGET, Allowance, budget_place, check_budget, shares
from hch.run.call_cache import CallCache, call_key
from hch.tasks import get_task
from hch.workspace import Answer, Ask, Workspace

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def check_accounts(trace: Trace, budget: int) -> None:
    """Every budgeted node's books balance: what it spent is its own calls plus what its subquestions kept
    (given minus returned), never more than it was given; every edge's `returned` is the child's unspent."""
    root = trace.graph.nodes[trace.root]
    assert root["budget"] == budget and trace.meta["budget"] == budget
    assert sum(1 for _ in trace.calls()) <= root["spent"] <= budget  # reused subtrees count, once made
    for node, data in trace.workspaces():
        assert 0 <= data["spent"] <= data["budget"]
        kept = 0
        for child, edge in trace.children(node):
            child_data = trace.graph.nodes[child]
            assert edge["budget"] == child_data["budget"] >= 1
            assert edge["returned"] == child_data["budget"] - child_data["spent"]
            kept += (edge["budget"] - edge["returned"]) * (1 + edge.get("repeats", 0))
        assert data["spent"] == len(trace.node_calls(node)) + kept, data["question"]
        if data.get("oracle"):
            assert data["spent"] == 0  # the environment answers for free


# -- shares ----------------------------------------------------------------------------------


def test_the_default_share_splits_all_but_the_answering_call_evenly() -> None:
    assert shares(None, 2, 9) == [4, 4]
    assert shares(None, 3, 10) == [3, 3, 3]
    assert shares(None, 1, 2) == [1]
    for left, count in ((1, 1), (0, 1), (2, 2), (3, 3)):
        refusal = shares(None, count, left)
        assert isinstance(refusal, str) and "cannot pay for" in refusal


def test_given_budgets_must_be_one_per_question_and_fit_what_is_left_minus_one() -> None:
    assert shares([5, 3], 2, 9) == [5, 3]
    assert shares([8], 1, 9) == [8]
    assert "add up to 9" in str(shares([5, 4], 2, 9))
    assert "one budget per subquestion" in str(shares([5], 2, 9))
    with pytest.raises(ValueError):
        Ask(questions=["a"], budgets=[0])


@pytest.mark.parametrize("bad", [0, -1, MAX_BUDGET + 1, 10**30])
def test_a_budget_out_of_range_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="the budget must be from 1"):
        check_budget(bad)


@pytest.mark.parametrize("bad", [1.5, float("nan"), "10", True])
def test_a_budget_that_is_no_int_is_refused(bad: Any) -> None:
    with pytest.raises(TypeError, match="the budget must be an int"):
        check_budget(bad)


def test_allowance_and_place() -> None:
    allowance = Allowance.of(5)
    assert allowance is not None and allowance.spent == 0
    allowance.left -= 2
    assert allowance.spent == 2 and Allowance.of(None) is None
    assert budget_place("abc", None) == "abc" and budget_place("abc", 7) == "abc$7"


# -- the engine ------------------------------------------------------------------------------


def test_unbudgeted_workspaces_actions_and_traces_are_as_before(tmp_path: Path) -> None:
    workspace = Workspace(question="q", depth=1)
    assert "budget" not in workspace.model_dump_json() and "budgets" not in Ask(questions=["a"]).model_dump_json()
    assert call_key("f", workspace) == call_key("f", Workspace(question="q", depth=1, budget=None))
    assert call_key("f", workspace) != call_key("f", Workspace(question="q", depth=1, budget=3))
    hch.answer_sync(SUM, depth=3, trace_path=tmp_path / "t.json")
    text = (tmp_path / "t.json").read_text()
    assert '"budget"' not in text and '"spent"' not in text and '"returned"' not in text


@pytest.mark.parametrize("budget", [1, 2, 3, 4, 9, 10, 11, 50])
def test_the_expert_never_spends_more_than_its_budget_and_the_books_balance(budget: int) -> None:
    result = hch.answer_sync(SUM, budget=budget)
    check_accounts(result.trace, budget)
    assert result.trace.meta["depth"] == budget  # depth unbounded: the budget is the bound
    assert (result.answer, result.status) == (("31", "ok") if budget >= 10 else (result.answer, "guess"))


def test_what_a_subtree_does_not_spend_returns_to_the_asker() -> None:
    result = hch.answer_sync(SUM, budget=100)
    trace = result.trace
    check_accounts(trace, 100)
    edges = [edge for child, edge in trace.children(trace.root)]
    assert [(e["budget"], e["returned"]) for e in edges] == [(49, 45), (49, 45)]  # 99 left: 1 kept, 49 each
    assert trace.graph.nodes[trace.root]["spent"] == 10  # the whole tree, and not a call more


def test_a_policy_gives_its_own_shares_and_is_refused_when_they_do_not_fit() -> None:
    seen: list[Workspace] = []

    async def behaviour(workspace: Workspace) -> Ask | Answer:
        seen.append(workspace)
        if workspace.question != "root":
            return Answer(answer=str(workspace.budget))
        if not workspace.steps:
            return Ask(questions=["a", "b"], budgets=[6, 4] if workspace.refusal is None else [5, 2])
        return Answer(answer=",".join(sub.answer for sub in workspace.answers))

    result = hch.answer_sync("root", budget=10, policy=FunctionPolicy(behaviour))
    assert result.answer == "4,1"  # the children see their share minus the call they are making
    assert "add up to 10" in str(seen[1].refusal) and seen[1].budget == 8  # the refused ask cost a call
    trace = result.trace
    check_accounts(trace, 10)
    assert trace.graph.nodes[trace.root]["limit"] == "budget"
    assert [e["budget"] for _, e in trace.children(trace.root)] == [5, 2]


def test_a_policy_that_keeps_asking_is_stopped_by_the_budget_not_past_it() -> None:
    async def greedy(workspace: Workspace) -> Ask | Answer:
        return Ask(questions=[f"{workspace.question}+"])

    for budget in (1, 2, 5, 17):
        result = hch.answer_sync("q", budget=budget, policy=FunctionPolicy(greedy))
        trace = result.trace
        check_accounts(trace, budget)
        assert sum(1 for _ in trace.calls()) == budget  # every call it was given, and no more
        assert result.status == "error"
        assert all(data["limit"] == "budget" for _, data in trace.workspaces())


def test_the_default_share_is_used_when_the_ask_says_nothing() -> None:
    async def behaviour(workspace: Workspace) -> Ask | Answer:
        if workspace.question == "root" and not workspace.steps:
            return Ask(questions=["a", "b", "c"])
        return Answer(answer=str(workspace.budget))

    result = hch.answer_sync("root", budget=10, policy=FunctionPolicy(behaviour))
    trace = result.trace
    assert [(e["budget"], e["returned"]) for _, e in trace.children(trace.root)] == [(2, 1)] * 3
    assert result.answer == "5"  # 10 - 1 (ask) - 3 (answers below) - 1 (this call)
    check_accounts(trace, 10)


def test_cache_hits_count_like_the_calls_they_replay(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    try:
        first = hch.answer_sync(SUM, budget=9, call_cache=cache)
        second = hch.answer_sync(SUM, budget=9, call_cache=cache)
    finally:
        cache.close()
    assert all(data["cached"] for _, data in second.trace.calls())
    assert (second.answer, second.status) == (first.answer, first.status)

    def books(trace: Trace) -> list[tuple[str, int, int]]:
        return [(d["question"], d["budget"], d["spent"]) for _, d in trace.workspaces()]

    assert books(second.trace) == books(first.trace)
    check_accounts(second.trace, 9)


def test_reused_subtrees_spend_what_they_spent_when_computed() -> None:
    async def behaviour(workspace: Workspace) -> Ask | Answer:
        if workspace.question == "root" and not workspace.steps:
            return Ask(questions=["leaf", "leaf"])
        if workspace.question == "leaf" and not workspace.steps:
            return Ask(questions=["deeper"])
        return Answer(answer="x")

    policy = FunctionPolicy(behaviour)
    result = hch.answer_sync("root", budget=21, policy=policy)
    trace = result.trace
    check_accounts(trace, 21)
    assert policy.calls["leaf"] == 2  # one subtree made (ask, answer), the other reused
    kinds = [(e["kind"], e["budget"], e["returned"], e.get("repeats")) for _, e in trace.children(trace.root)]
    assert kinds == [("delegate", 9, 6, 1)]  # 20 left after the ask: 1 kept, 9 each; the same copy twice
    assert trace.graph.nodes[trace.root]["spent"] == 1 + 3 + 3 + 1  # as if the copy had run again


def test_the_environment_answers_for_free() -> None:
    item = next(i for i in get_task("wildcard-search").generate(20, 1, facts="hidden") if i.required_depth == 2)
    result = hch.answer_sync(item.question, context=item.context, facts="hidden", budget=100)
    assert result.answer == item.answer and result.status == "ok"
    check_accounts(result.trace, 100)
    oracles = [d for _, d in result.trace.workspaces() if d.get("oracle")]
    assert oracles and all(d["spent"] == 0 for d in oracles)


def test_depth_stays_an_extra_bound_and_is_required_without_a_budget() -> None:
    result = hch.answer_sync(SUM, budget=100, depth=1)
    assert result.status == "guess" and result.trace.meta["depth"] == 1
    check_accounts(result.trace, 100)
    with pytest.raises(TypeError, match="needs depth="):
        hch.answer_sync(SUM)
    with pytest.raises(ValueError, match="the budget must be from 1"):
        hch.answer_sync(SUM, budget=0)


@pytest.mark.parametrize("task", ["arithmetic", "permutation-powering", "sequential-assignments", "wildcard-search",
                                  "shortest-path", "union-find"])
def test_the_honest_expert_guesses_only_where_its_budget_cannot_pay_for_its_step(task: str) -> None:
    facts = "shown" if task == "arithmetic" else "hidden"
    items = get_task(task).generate(4, 2, facts=facts)
    for item in items:
        for budget in (3, 12, 40):
            result = hch.answer_sync(item.question, context=item.context, facts=facts, budget=budget)
            check_accounts(result.trace, budget)
            for node, data in result.trace.workspaces():
                if data["status"] != "guess":
                    continue
                if any(result.trace.graph.nodes[c]["status"] == "guess" for c, _ in result.trace.children(node)):
                    continue  # a guess passed up
                last = result.trace.graph.nodes[max(result.trace.node_calls(node))]
                assert last["output"]["guess"] and last["input"]["budget"] <= 8, (task, data["question"])
                assert last["input"]["budget"] < 2 or not last["input"].get("refusal")


def test_a_budgeted_trace_saves_loads_and_replays(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    hch.answer_sync(SUM, budget=12, trace_path=path)
    loaded = trace_format.load(path)
    check_accounts(loaded, 12)
    report, _ = anyio.run(lambda: replay(loaded))
    assert report.reproduced


def test_an_interrupted_budgeted_run_resumes_from_the_cache_with_the_same_books(tmp_path: Path) -> None:
    from hch.errors import Stopped
    from hch.experts import ExpertPolicy

    expert, armed = ExpertPolicy(), [True]

    async def behaviour(workspace: Workspace) -> Ask | Answer:
        if workspace.question == "What is the sum of 5, 9?" and armed[0]:
            armed[0] = False
            raise Stopped("you quit at the prompt")
        action = await expert.act(workspace)
        assert isinstance(action, Ask | Answer)
        return action

    policy, path = FunctionPolicy(behaviour), tmp_path / "run.json"
    cache = CallCache(tmp_path / "c.sqlite")
    try:
        with pytest.raises(Stopped):
            hch.answer_sync(SUM, budget=11, policy=policy, call_cache=cache, trace_path=path)
        resumed = hch.answer_sync(SUM, budget=11, policy=policy, call_cache=cache, trace_path=path)
    finally:
        cache.close()
    fresh = hch.answer_sync(SUM, budget=11, policy=FunctionPolicy(behaviour))
    assert (resumed.answer, resumed.status) == (fresh.answer, fresh.status) == ("31", "ok")
    assert any(data["cached"] for _, data in resumed.trace.calls())

    def books(trace: Trace) -> list[tuple[str, int, int]]:
        return sorted((d["question"], d["budget"], d["spent"]) for _, d in trace.workspaces())

    assert books(resumed.trace) == books(fresh.trace)
    check_accounts(resumed.trace, 11)


def test_a_vote_is_one_call_of_the_budget_and_k_invocations() -> None:
    result = hch.answer_sync(SUM, budget=10, policy="vote(3, expert)")
    check_accounts(result.trace, 10)
    assert (result.answer, result.status) == ("31", "ok")
    assert result.summary.policy_calls == 10 and result.summary.invocations == 30
    mixed = hch.answer_sync(SUM, budget=10, policy="root=expert(early_guess),else=vote(3, expert)")
    assert (mixed.answer, mixed.status) == ("31", "ok")
    check_accounts(mixed.trace, 10)
