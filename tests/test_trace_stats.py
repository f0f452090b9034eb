from __future__ import annotations

from helpers import FunctionPolicy

import hch
from hch.review.trace_stats import compute, dependencies
from hch.workspace import Answer, Ask, Reply, Usage, Workspace

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def test_counts_come_from_the_summary_and_depths_are_tallied() -> None:
    result = hch.answer_sync(SUM, depth=3)
    stats = compute(result.trace)
    assert stats.summary.nodes == 7 and stats.summary.policy_calls == 10
    assert stats.workspaces_per_depth == {3: 1, 2: 2, 1: 4}
    assert sum(stats.calls_per_policy.values()) == 10
    assert stats.status == "ok" and stats.answer == "31"
    assert "nodes: 7 (n=3: 1, n=2: 2, n=1: 4)" in stats.text()


def test_the_critical_path_in_calls_follows_ask_child_and_the_call_after() -> None:
    stats = compute(hch.answer_sync(SUM, depth=3).trace)
    # root asks → a half asks → a pair answers → the half answers → the root answers
    assert stats.critical_path_calls.length == 5
    assert len(stats.critical_path_calls.calls) == 5
    owners = stats.critical_path_calls.workspaces
    assert owners[0] == owners[-1] == 0 and owners[1] == owners[3]


def test_the_critical_path_in_time_weights_calls_by_latency() -> None:
    # Record latencies via usage-free replies; a slow branch must be the critical one.
    async def act(ws: Workspace) -> Ask | Answer | Reply:
        if ws.question == "root":
            return Ask(questions=["fast", "slow"]) if not ws.steps else Answer(answer="done")
        return Reply(action=Answer(answer=ws.question), usage=Usage(prompt_tokens=3, completion_tokens=1))

    trace = hch.answer_sync("root", depth=1, policy=FunctionPolicy(act)).trace
    for _, data in trace.calls():
        data["latency"] = {"root": 1.0, "fast": 0.5, "slow": 2.0}[data["input"]["question"]]
    stats = compute(trace)
    assert stats.critical_path_time.length == 4.0  # root 1 + slow 2 + root 1
    questions = [trace.graph.nodes[w]["question"] for w in stats.critical_path_time.workspaces]
    assert questions == ["root", "slow", "root"]
    assert stats.summary.tokens == 8


def test_dependencies_are_a_dag_even_with_reuse() -> None:
    import networkx as nx

    trace = hch.answer_sync("What is (1 + 2) * (1 + 2) + (1 + 2)?", depth=3).trace
    deps = dependencies(trace)
    assert nx.is_directed_acyclic_graph(deps)
    assert compute(trace).summary.subtree_cache_hits >= 1


def test_calls_per_policy_are_listed_when_several_policies_acted() -> None:
    from hch.policies.spec import make_policy

    trace = hch.answer_sync(SUM, depth=3, policy=make_policy("root=expert(list),else=expert")).trace
    stats = compute(trace)
    assert len(stats.calls_per_policy) == 2 and sum(stats.calls_per_policy.values()) == 10
    assert "  2 calls: expert(list@3)" in stats.text()


def test_invocations_and_unverified_answers_show_when_there_are_any() -> None:
    from hch.policies.spec import make_policy

    plain = compute(hch.answer_sync("What is the sum of 1, 2, 3, 4?", depth=2).trace).text()
    assert "invocations" not in plain and "unverified" not in plain
    voted = hch.answer_sync("What is the sum of 1, 2, 3, 4?", depth=2, policy=make_policy("vote(3, expert)"))
    assert "policy calls: 4 made, 0 from the call cache; subtree reuses: 0; 12 policy invocations made" in (
        compute(voted.trace).text()
    )
