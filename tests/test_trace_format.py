from __future__ import annotations

import json
from pathlib import Path

import anyio
import networkx as nx
import pytest
from helpers import trace_data

import hch
from hch.errors import TraceError
from hch.record.format import SCHEMA_VERSION, load, save

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def graphs_equal(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    return bool(
        a.graph == b.graph
        and dict(a.nodes(data=True)) == dict(b.nodes(data=True))
        and {(u, v): d for u, v, d in a.edges(data=True)} == {(u, v): d for u, v, d in b.edges(data=True)}
    )


def test_save_then_load_gives_an_equal_graph(tmp_path: Path) -> None:
    result = hch.answer_sync(SUM, depth=3, trace_path=tmp_path / "t.json")
    loaded = load(tmp_path / "t.json")
    assert graphs_equal(loaded.graph, json_roundtrip(result.trace.graph))
    assert loaded.meta["answer"] == "31"
    assert loaded.meta["summary"]["nodes"] == 7


def json_roundtrip(graph: nx.DiGraph) -> nx.DiGraph:
    """The in-memory graph as JSON would give it back (tuples become lists)."""
    return nx.node_link_graph(json.loads(json.dumps(nx.node_link_data(graph, edges="edges"))), edges="edges")


def test_a_trace_with_reuse_and_repeats_round_trips(tmp_path: Path) -> None:
    result = hch.answer_sync("What is (1 + 2) * (1 + 2)?", depth=2)
    assert result.summary.subtree_cache_hits == 1
    save(result.trace, tmp_path / "t.json")
    assert graphs_equal(load(tmp_path / "t.json").graph, json_roundtrip(result.trace.graph))


def test_saving_leaves_no_temporary_file(tmp_path: Path) -> None:
    hch.answer_sync(SUM, depth=1, trace_path=tmp_path / "t.json")
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "hch-trace", "schema_version": 1, "nodes": [', "not valid JSON"),
        ("[1, 2, 3]", "not an hch trace"),
        ('{"directed": true, "nodes": [], "edges": []}', "not an hch trace"),
        (f'{{"format": "hch-trace", "schema_version": {SCHEMA_VERSION + 1}}}', "schema version"),
        ('{"format": "hch-trace", "schema_version": 1, "graph": {}, "nodes": [{"id": 0}], "edges": []}', "nodes.0"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TraceError, match=message) as info:
        load(path)
    assert "\n" not in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no trace file at"):
        load(tmp_path / "nope.json")


def test_the_fast_loader_mirrors_the_file_models() -> None:
    from typing import get_type_hints

    from hch.record.format import MIRRORS

    for model, mirror in MIRRORS.items():
        assert list(get_type_hints(mirror)) == list(model.model_fields), model.__name__


def test_the_fast_loader_builds_what_the_models_build() -> None:
    from hch.record.format import TraceFile, from_model, parse, to_data

    result = hch.answer_sync("What is (3 + 4) * (10 - 2 * 3)?", depth=2)
    data = json.loads(json.dumps(to_data(result.trace)))
    data["nodes"][1]["usage"] = {"prompt_tokens": 5}  # partial usage: defaults fill the rest
    del data["nodes"][1]["attempts"]
    data["nodes"][0]["note"] = "an extra field is kept"
    by_models = from_model(TraceFile.model_validate(data)).graph
    fast = parse(json.dumps(data)).graph
    assert graphs_equal(fast, by_models)
    assert [list(d) for _, d in fast.nodes(data=True)] == [list(d) for _, d in by_models.nodes(data=True)]
    assert fast.nodes[1]["usage"]["completion_tokens"] == 0 and fast.nodes[0]["note"] == "an extra field is kept"


def test_export_json_writes_exactly_the_node_link_json_of_to_data(tmp_path: Path) -> None:
    import pydantic_core

    from hch.record.format import NODE_LINK_VERSION, to_data, write_json
    from hch.workspace import Usage

    result = hch.answer_sync(SUM, depth=3)
    result.trace.graph.nodes[1]["usage"] = Usage(prompt_tokens=3)  # a model among the attributes
    with open(tmp_path / "t.json", "wb") as file:
        write_json(result.trace, file)
    assert (tmp_path / "t.json").read_bytes() == pydantic_core.to_json(to_data(result.trace))
    assert to_data(result.trace)["schema_version"] == NODE_LINK_VERSION
    big = hch.Trace()  # more nodes and edges than one chunk holds
    for n in range(5000):
        big.add_node("workspace", question=f"q{n}", depth=0, policy="p")
        if n:
            big.add_edge(n - 1, n, "delegate", step=0, order=0)
    with open(tmp_path / "big.json", "wb") as file:
        write_json(big, file)
    assert (tmp_path / "big.json").read_bytes() == pydantic_core.to_json(to_data(big))


def test_a_run_writes_one_record_per_line_and_ends_with_its_final_metadata(tmp_path: Path) -> None:
    result = hch.answer_sync(SUM, depth=2, trace_path=tmp_path / "t.json")
    lines = [json.loads(line) for line in (tmp_path / "t.json").read_text().splitlines()]
    assert lines[0]["format"] == "hch-trace" and lines[0]["schema_version"] == SCHEMA_VERSION == 2
    assert lines[-1]["end"]["answer"] == result.answer and lines[-1]["end"]["summary"]["nodes"] == result.summary.nodes
    assert all(set(line) in ({"node"}, {"edge"}) for line in lines[1:-1])
    big = hch.Trace(question="q")  # saved from memory: the same layout, more records than one chunk
    for n in range(5000):
        big.add_node("workspace", question=f"q{n}", depth=0, policy="p")
        if n:
            big.add_edge(n - 1, n, "delegate", step=0, order=0)
    save(big, tmp_path / "big.json")
    loaded = load(tmp_path / "big.json")
    assert loaded.nodes.keys() == big.nodes.keys() and list(loaded.edges()) == list(big.edges())


def test_a_schema_1_trace_still_loads_shows_replays_and_diffs(tmp_path: Path) -> None:
    """A node-link trace written by hch before schema 2 (committed as written then)."""
    from hch.review.diff import diff
    from hch.review.replay import replay
    from hch.review.trace_stats import compute

    path = Path(__file__).parent / "data" / "v1_trace.json"
    assert json.loads(path.read_text())["schema_version"] == 1
    old = load(path)
    assert old.meta["answer"] == "31" and len(list(old.workspaces())) == 7
    assert compute(old).summary.nodes == 7
    report, again = anyio.run(replay, old)
    assert report.reproduced and report.served == 10
    assert diff(old, again).same
    saved = hch.answer_sync(SUM, depth=3, trace_path=tmp_path / "new.json")
    assert diff(old, load(tmp_path / "new.json")).same and saved.answer == "31"


# -- structural validation on load (issue 14, class 8) -------------------------------------------


def _valid(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    """A saved trace with delegations, a reuse edge and calls, as JSON data."""
    hch.answer_sync("What is (1 + 2) * (1 + 2) + (1 + 2) * (5 - 1)?", depth=3, trace_path=tmp_path / "ok.json")
    return trace_data(tmp_path / "ok.json")


def _edge(data: dict, kind: str) -> dict:  # type: ignore[type-arg]
    return next(e for e in data["edges"] if e["kind"] == kind)


def _ids(data: dict, kind: str) -> list[int]:  # type: ignore[type-arg]
    return [n["id"] for n in data["nodes"] if n["kind"] == kind]


def _corrupt_cycle(d: dict) -> None:  # type: ignore[type-arg]
    child = _edge(d, "delegate")
    d["edges"].append({**child, "source": child["target"], "target": child["source"]})


def _corrupt_long_cycle(d: dict) -> None:  # type: ignore[type-arg]
    """A cycle through three workspaces that does not touch the root (reuse edges: each already has its asker)."""
    import itertools

    pairs = {(e["source"], e["target"]) for e in d["edges"]}
    cycle = next(((a, b), (b, c), (c, a)) for a, b, c in itertools.permutations(_ids(d, "workspace")[1:], 3)
                 if not pairs & {(a, b), (b, c), (c, a)})  # new pairs only: a repeated one is another error
    d["edges"] += [{"source": a, "target": b, "kind": "reuse", "step": 0, "order": 0} for a, b in cycle]


def _corrupt_self_reuse(d: dict) -> None:  # type: ignore[type-arg]
    node = _ids(d, "workspace")[2]
    d["edges"].append({"source": node, "target": node, "kind": "reuse", "step": 0, "order": 0})


CORRUPTIONS = {
    "a cycle of delegations": (_corrupt_cycle, "form a cycle"),
    "a cycle of three away from the root": (_corrupt_long_cycle, "form a cycle"),
    "a workspace reusing itself": (_corrupt_self_reuse, "form a cycle"),
    "an edge to a missing node": (
        lambda d: d["edges"].append({"source": 0, "target": 999, "kind": "delegate"}), "not a node of the trace"),
    "an edge from a missing node": (
        lambda d: _edge(d, "reuse").update(source=-5), "not a node of the trace"),
    "a duplicate node id": (lambda d: d["nodes"].append(dict(d["nodes"][1])), "is used twice"),
    "a call of a missing workspace": (
        lambda d: next(n for n in d["nodes"] if n["kind"] == "call").update(workspace=12345), "belongs to workspace"),
    "a call that belongs to a call": (
        lambda d: next(n for n in d["nodes"] if n["kind"] == "call").update(workspace=_ids(d, "call")[1]),
        "is not a workspace"),
    "a call edge to another's call": (
        lambda d: _edge(d, "call").update(source=_ids(d, "workspace")[1]), "does not join a call to its own"),
    "a call without its call edge": (
        lambda d: d["edges"].remove(_edge(d, "call")), "has no call edge"),
    "a delegation to a call": (
        lambda d: _edge(d, "delegate").update(target=_ids(d, "call")[0]), "does not join two workspaces"),
    "the root asked by another": (
        lambda d: (d["nodes"].append({**d["nodes"][0], "id": 999}),
                   d["edges"].append({"source": 999, "target": 0, "kind": "delegate"})), "root workspace 0"),
    "no workspace at all": (
        lambda d: (d.update(nodes=[n for n in d["nodes"] if n["kind"] != "workspace"], edges=[])),
        "belongs to workspace"),
    "nothing at all": (lambda d: d.update(nodes=[], edges=[]), "holds no workspace"),
    "a workspace delegated by two askers": (
        lambda d: d["edges"].append({**_edge(d, "delegate"), "source": _ids(d, "workspace")[-1]}),
        "is delegated by both"),
    "an edge recorded twice": (lambda d: d["edges"].append(dict(_edge(d, "call"))), "is recorded twice"),
    "a delegation and a reuse of one pair": (
        lambda d: d["edges"].append({**_edge(d, "delegate"), "kind": "reuse"}), "is recorded twice"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_structurally_corrupt_trace_is_one_line_error(tmp_path: Path, name: str) -> None:
    corrupt, message = CORRUPTIONS[name]
    data = _valid(tmp_path)
    corrupt(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TraceError, match=message) as info:
        load(path)
    assert str(info.value).startswith(f"{path} is not a valid hch trace: ") and "\n" not in str(info.value)


def test_every_example_trace_passes_the_structural_check() -> None:
    from hch.record.format import structure_problem

    examples = sorted((Path(__file__).parents[1] / "traces" / "examples").glob("*.json"))
    assert examples
    for path in examples:
        assert structure_problem(json.loads(path.read_text())) is None, path
        load(path)


def test_the_structural_check_is_linear_in_a_long_chain() -> None:
    """A chain of 10^5 workspaces (the deepest DAG) is checked without recursion."""
    from hch.record.format import structure_problem

    count = 100_000
    nodes = [{"id": i, "kind": "workspace"} for i in range(count)]
    edges = [{"source": i, "target": i + 1, "kind": "delegate"} for i in range(count - 1)]
    assert structure_problem({"nodes": nodes, "edges": edges}) is None
    edges.append({"source": count - 1, "target": 1, "kind": "reuse"})  # (a second delegation is refused anyway)
    problem = structure_problem({"nodes": nodes, "edges": edges})
    assert problem == "the delegation edges form a cycle through workspace 1"


def test_a_grafted_call_written_by_an_earlier_hch_still_loads(tmp_path: Path) -> None:
    """Earlier versions copied calls of reused subtrees with the id of their workspace elsewhere."""
    data = _valid(tmp_path)
    call = next(n for n in data["nodes"] if n["kind"] == "call" and n["workspace"] != 0)
    call.update(grafted=True, workspace=123456)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    load(path)
