from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

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


def test_save_writes_exactly_the_json_of_to_data(tmp_path: Path) -> None:
    import pydantic_core

    from hch.record.format import to_data
    from hch.workspace import Usage

    result = hch.answer_sync(SUM, depth=3)
    result.trace.graph.nodes[1]["usage"] = Usage(prompt_tokens=3)  # a model among the attributes
    save(result.trace, tmp_path / "t.json")
    assert (tmp_path / "t.json").read_bytes() == pydantic_core.to_json(to_data(result.trace))
    empty = hch.Trace()
    save(empty, tmp_path / "empty.json")
    assert json.loads((tmp_path / "empty.json").read_text())["nodes"] == []
    big = hch.Trace()  # more nodes and edges than one chunk holds
    for n in range(5000):
        big.add_node("workspace", question=f"q{n}", depth=0, policy="p")
        if n:
            big.add_edge(n - 1, n, "delegate", step=0, order=0)
    save(big, tmp_path / "big.json")
    assert (tmp_path / "big.json").read_bytes() == pydantic_core.to_json(to_data(big))
