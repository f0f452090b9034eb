from __future__ import annotations

import json
import re
from pathlib import Path

import networkx as nx
import pytest
from helpers import FunctionPolicy

import hch
from hch.record.format import load, to_data
from hch.record.trace import Trace
from hch.review.export import FORMATS, export, flat, to_dot
from hch.workspace import Answer, Ask, Workspace

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"
NASTY = 'say "hi"\\n <b>&amp;</b>\nnew line'


def nasty_trace() -> Trace:
    async def act(ws: Workspace) -> Ask | Answer:
        if ws.question == "root":
            return Ask(questions=[NASTY]) if not ws.steps else Answer(answer=ws.steps[0][0].answer)
        return Answer(answer=NASTY)

    return hch.answer_sync("root", depth=1, policy=FunctionPolicy(act)).trace


def test_json_export_round_trips(tmp_path: Path) -> None:
    trace = hch.answer_sync("What is (1 + 2) * (1 + 2) + (1 + 2)?", depth=3).trace
    export(trace, tmp_path / "a.json", "json")
    back = load(tmp_path / "a.json")
    export(back, tmp_path / "b.json", "json")
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())
    assert json.loads(json.dumps(to_data(trace), default=str)) == json.loads((tmp_path / "a.json").read_text())


@pytest.mark.parametrize(("fmt", "read"), [("graphml", nx.read_graphml), ("gexf", nx.read_gexf)])
def test_networkx_reads_back_graphml_and_gexf(tmp_path: Path, fmt: str, read: object) -> None:
    trace = nasty_trace()
    path = export(trace, tmp_path / f"t.{fmt}", fmt)
    graph = read(path)  # type: ignore[operator]
    assert graph.number_of_nodes() == trace.graph.number_of_nodes()
    assert graph.number_of_edges() == trace.graph.number_of_edges()
    child = next(n for n, d in trace.workspaces() if d["question"] == NASTY)
    data = graph.nodes[str(child)]
    assert data["question"] == NASTY and data["answer"] == NASTY and data["depth"] == 0
    call = trace.node_calls(child)[0]
    assert json.loads(graph.nodes[str(call)]["output"]) == {"kind": "answer", "answer": NASTY, "guess": False}
    assert "cycle_of" not in data  # None values are left out


def test_flat_keeps_scalars_and_writes_the_rest_as_json() -> None:
    assert flat(3) == 3 and flat("x") == "x" and flat(True) is True
    assert flat({"b": 1, "a": [1, 2]}) == '{"a": [1, 2], "b": 1}'


def test_dot_escapes_quotes_backslashes_and_line_breaks() -> None:
    text = to_dot(nasty_trace())
    assert text.startswith("digraph hch {") and text.rstrip().endswith("}")
    body = text.splitlines()[2:-1]
    # Every statement is on one line and every quoted string is properly closed.
    string = r'"(?:[^"\\]|\\.)*"'
    statement = re.compile(rf'^  (?:{string}={string};|\d+ \[.*\];|\d+ -> \d+ \[.*\];)$')
    for line in body:
        assert statement.match(line), line
        assert re.fullmatch(rf'[^"]*(?:{string}[^"]*)*', line), line
    assert 'say \\"hi\\"\\\\n <b>&amp;</b>\\nnew line' in text


def test_jsonl_is_one_record_per_workspace(tmp_path: Path) -> None:
    trace = hch.answer_sync(SUM, depth=3).trace
    path = export(trace, tmp_path / "t.jsonl", "jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 7 and {r["id"] for r in records} == {n for n, _ in trace.workspaces()}
    root = next(r for r in records if r["parent"] is None)
    assert (root["answer"], root["calls"], root["subquestions"], root["depth"]) == ("31", 2, 2, 3)
    assert all(set(r) == set(records[0]) for r in records)  # rectangular: a DataFrame as is


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    assert set(FORMATS) == {"json", "graphml", "gexf", "dot", "jsonl"}
    with pytest.raises(ValueError, match="unknown export format"):
        export(nasty_trace(), tmp_path / "x", "xml")
