from __future__ import annotations

from typing import Any

from hch.record.trace import Trace


def small_trace() -> Trace:
    trace = Trace(question="root")
    root = trace.add_node("workspace", question="root")
    child = trace.add_node("workspace", question="child")
    call = trace.add_node("call", workspace=root)
    trace.add_edge(root, child, "delegate", step=0, order=0)
    trace.add_edge(root, call, "call")
    return trace


def test_nodes_are_numbered_in_one_id_space_and_listed_by_kind() -> None:
    trace = small_trace()
    assert trace.root == 0
    assert [n for n, _ in trace.workspaces()] == [0, 1]
    assert [n for n, _ in trace.calls()] == [2]
    assert trace.node_calls(0) == [2]
    assert [c for c, _ in trace.children(0)] == [1]


def test_listeners_see_every_change() -> None:
    trace = Trace()
    events: list[tuple[str, dict[str, Any]]] = []
    trace.listeners.append(lambda kind, data: events.append((kind, data)))
    node = trace.add_node("workspace", question="q", status="running")
    trace.update_node(node, status="ok")
    trace.add_edge(node, trace.add_node("call", workspace=node), "call")
    assert [kind for kind, _ in events] == ["node", "node", "node", "edge"]
    assert events[1][1] == {"id": 0, "kind": "workspace", "question": "q", "status": "ok"}
    assert events[3][1] == {"source": 0, "target": 1, "kind": "call"}


def test_a_repeated_edge_counts_repeats() -> None:
    trace = small_trace()
    trace.add_edge(0, 1, "reuse", step=1, order=0)
    assert trace.graph.edges[0, 1] == {"kind": "delegate", "step": 0, "order": 0, "repeats": 1}


def test_graft_copies_a_subtree_under_new_ids() -> None:
    source = small_trace()
    target = Trace()
    target.add_node("workspace", question="other")
    copy = target.graft(source, 0)
    assert copy == 1
    assert target.graph.nodes[copy]["question"] == "root"
    assert sorted(target.graph.edges) == [(1, 2), (1, 3)]
    assert target.graph.edges[1, 2]["kind"] == "delegate"


def test_a_grafted_call_names_the_workspace_it_was_copied_under() -> None:
    """The journal rebuilds call edges from a call's `workspace`; a copy must name its new owner."""
    source = Trace()
    root = source.add_node("workspace", question="root")
    child = source.add_node("workspace", question="child")
    source.add_edge(root, child, "delegate", step=0, order=0)
    for owner in (root, child):
        source.add_edge(owner, source.add_node("call", workspace=owner, question_seen=f"{owner}"), "call")
    target = Trace()
    for _ in range(5):
        target.add_node("workspace", question="other")
    copy = target.graft(source, root)
    copied = list(target.calls())
    assert len(copied) == 2
    for node, data in copied:
        owner = data["workspace"]
        assert target.graph.has_edge(owner, node) and owner >= copy
        assert target.graph.nodes[owner]["question"] == source.graph.nodes[int(data["question_seen"])]["question"]


def test_ids_can_be_reserved_and_given_back_to_nodes_that_had_them() -> None:
    trace = Trace()
    trace.reserve(5)
    assert trace.add_node("workspace", 3, question="kept") == 3
    assert trace.add_node("workspace", question="new") == 6  # above the reserved ids
    assert trace.add_node("workspace", 3, question="taken") == 7  # an id in use is never given twice
    assert trace.graph.nodes[3]["question"] == "kept"


def test_the_networkx_graph_is_made_only_when_asked_for_and_follows_later_changes() -> None:
    import hch

    result = hch.answer_sync("What is the sum of 1, 2, 3, 4?", depth=2)
    trace = result.trace
    assert trace._graph is None  # a run never builds it
    graph = trace.graph
    assert graph is trace.graph and graph.graph is trace.meta
    assert graph.number_of_nodes() == len(trace.nodes) and graph.number_of_edges() == len(list(trace.edges()))
    node = trace.add_node("workspace", question="later")
    trace.add_edge(trace.root, node, "delegate", step=9, order=0)
    trace.update_node(node, status="ok")
    assert graph.nodes[node]["status"] == "ok" and graph.has_edge(trace.root, node)
    assert trace.root in graph.pred[node]


def test_a_streamed_run_keeps_only_the_work_in_flight_and_writes_the_same_trace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    import hch
    from hch.record.format import load
    from hch.workspace import Answer, Ask, Workspace

    streamed, held = Trace(), []

    class Tree:
        fingerprint = "tree"

        async def act(self, w: Workspace) -> Ask | Answer:
            held.append(len(streamed.nodes))
            if w.depth > 0 and not w.steps:
                return Ask(questions=[f"{w.question}.{i}" for i in range(4)] + ["same"])
            return Answer(answer=w.question)

    kept = hch.answer_sync("q", depth=4, policy=Tree(), trace_path=tmp_path / "kept.json")
    held.clear()
    result = hch.answer_sync("q", depth=4, policy=Tree(), trace_path=tmp_path / "streamed.json", trace=streamed,
                             keep_trace=False)
    assert result.summary.nodes == kept.summary.nodes > 300 and result.summary.subtree_cache_hits > 0
    assert result.summary.model_dump(exclude={"wall_time"}) == kept.summary.model_dump(exclude={"wall_time"})
    assert not streamed.nodes  # all let go
    distinct, held[:] = Trace(), []

    class Distinct(Tree):
        async def act(self, w: Workspace) -> Ask | Answer:
            held.append(len(distinct.nodes))
            if w.depth > 0 and not w.steps:
                return Ask(questions=[f"{w.question}.{i}" for i in range(4)])
            return Answer(answer=w.question)

    result = hch.answer_sync("q", depth=4, policy=Distinct(), trace_path=tmp_path / "distinct.json", trace=distinct,
                             keep_trace=False)
    assert result.summary.nodes == 341 and max(held) <= 5  # in flight: one path of the tree, never the tree
    a, b = load(tmp_path / "kept.json"), load(tmp_path / "streamed.json")
    assert {n: d["question"] for n, d in a.workspaces()} == {n: d["question"] for n, d in b.workspaces()}
    assert sorted((s, t, d["kind"]) for s, t, d in a.edges()) == sorted((s, t, d["kind"]) for s, t, d in b.edges())
    with pytest.raises(ValueError, match="keep_trace=False needs a trace_path"):
        hch.answer_sync("q", depth=1, policy=Tree(), keep_trace=False)
    with pytest.raises(ValueError, match="streamed trace keeps no finished subtree"):
        Trace().graft(streamed, 0)


def test_a_root_given_by_a_loader_follows_a_smaller_workspace_added_later() -> None:
    trace = Trace.of({}, {5: {"kind": "workspace"}, 6: {"kind": "call", "workspace": 5}}, {}, root=5)
    assert trace.root == 5
    trace.add_node("call", node_id=1, workspace=5)  # a call is never the root
    assert trace.root == 5
    trace.add_node("workspace", node_id=2, question="q")
    assert trace.root == 2 == min(node for node, _ in trace.workspaces())
