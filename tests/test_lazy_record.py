from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest
from helpers import spoil_last_record

import hch
from hch.errors import TraceError
from hch.record import format as trace_format
from hch.record.journal import load_journal
from hch.record.lazy_record import LazyCall, LazyWorkspace
from hch.record.trace import Trace

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def _run(tmp_path: Path) -> Path:
    path = tmp_path / "t.json"
    hch.answer_sync("What is (1 + 2) * (1 + 2)?", depth=2, trace_path=path)
    return path


def _eager(path: Path) -> Trace:
    """The trace as the text parser builds it: every record parsed at once."""
    return trace_format.parse(path.read_text(encoding="utf-8"), str(path))


def _edges(trace: Trace) -> list[tuple[int, int, dict[str, object]]]:
    return [(u, v, dict(d)) for u, v, d in trace.edges()]


def test_a_runs_trace_keeps_its_calls_unread_until_used(tmp_path: Path) -> None:
    trace = trace_format.load(_run(tmp_path))
    calls = [data for _, data in trace.calls()]
    assert calls and all(type(call) is LazyCall and not call.loaded for call in calls)
    workspace = trace.nodes[trace.root]
    assert [c for c in trace.node_calls(trace.root)] and all(
        trace.nodes[c]["workspace"] == trace.root for c in trace.node_calls(trace.root))
    assert not any(call.loaded for call in calls)  # kind and workspace come without parsing
    assert workspace["question"] == "What is (1 + 2) * (1 + 2)?"
    first = calls[0]
    assert first["input"]["question"] and first.loaded


def test_a_lazy_load_reads_what_an_eager_one_does_in_the_same_order(tmp_path: Path) -> None:
    path = _run(tmp_path)
    lazy, eager = trace_format.load(path), _eager(path)
    assert list(lazy.nodes) == list(eager.nodes)
    assert lazy.nodes == eager.nodes
    assert _edges(lazy) == _edges(eager)
    assert lazy.meta == eager.meta
    for node, data in lazy.nodes.items():
        assert list(data.items()) == list(eager.nodes[node].items())  # same keys, same order


@pytest.mark.parametrize("use", [
    lambda call: {**call}, dict, lambda call: "input" in call, lambda call: call.get("output"), list, len,
    lambda call: call.items(), lambda call: call.copy(), repr, lambda call: pickle.loads(pickle.dumps(call)),
    copy.deepcopy, lambda call: call == {},
])
def test_any_other_use_of_a_call_reads_it_whole(tmp_path: Path, use: object) -> None:
    path = _run(tmp_path)
    trace, eager = trace_format.load(path), _eager(path)
    node, call = next(trace.calls())
    assert not call.loaded
    use(call)  # type: ignore[operator]
    assert call.loaded and call == eager.nodes[node] and dict(call) == eager.nodes[node]


def test_saving_a_lazily_loaded_trace_writes_every_call_whole(tmp_path: Path) -> None:
    path = _run(tmp_path)
    trace = trace_format.load(path)
    trace_format.save(trace, tmp_path / "again.json")
    again = trace_format.load(tmp_path / "again.json")
    assert again.nodes == _eager(path).nodes and _edges(again) == _edges(_eager(path))


@pytest.mark.parametrize(("kind", "field", "what"), [("call", b"latency", "a policy call's record"),
                                                  ("workspace", b"status", "a workspace's record")])
def test_a_bad_record_is_a_one_line_error_when_read(tmp_path: Path, kind: str, field: bytes, what: str) -> None:
    path = _run(tmp_path)
    spoil_last_record(path, kind, field.decode())
    trace = trace_format.load(path)  # the structure is sound: ids, kinds and workspaces are right
    bad = next(data for _, data in trace.nodes.items() if b"pondering" in (getattr(data, "_line", None) or b""))
    with pytest.raises(TraceError, match=f"{what}: {field.decode()}") as info:
        bad["question" if kind == "workspace" else "input"]
    assert "\n" not in str(info.value)
    with pytest.raises(TraceError, match=field.decode()):
        _eager(path)  # the text parser finds it at once


def test_a_call_of_a_missing_workspace_is_refused_on_load(tmp_path: Path) -> None:
    path = _run(tmp_path)
    lines = path.read_bytes().split(b"\n")
    number = next(i for i, line in enumerate(lines) if line.endswith(b'"kind":"call"}}'))
    head = json.loads(lines[number])["node"]
    lines[number] = lines[number].replace(b'"workspace":%d,' % head["workspace"], b'"workspace":999999,', 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(TraceError, match="999999"):
        trace_format.load(path)


def test_a_killed_runs_journal_loads_lazily_too(tmp_path: Path) -> None:
    path = _run(tmp_path)
    lines = path.read_bytes().split(b"\n")
    journal = tmp_path / "t.json.journal"
    journal.write_bytes(b"\n".join(lines[:-2]) + b"\n" + lines[-2][:20])  # no end record, a cut last line
    trace = load_journal(journal)
    assert trace.meta["status"] == "unfinished"
    assert trace.nodes == _eager(path).nodes or len(trace.nodes) <= len(_eager(path).nodes)
    journal.write_bytes(b"\n".join(lines[:-2]) + b"\n")  # no end record, every line whole
    trace = load_journal(journal)
    assert trace.meta["status"] == "unfinished"
    assert any(type(data) is LazyCall for data in trace.nodes.values())
    assert trace.nodes == _eager(path).nodes


def test_two_lazy_loads_compare_equal_call_by_call(tmp_path: Path) -> None:
    path = _run(tmp_path)
    first, second = trace_format.load(path), trace_format.load(path)
    assert first.nodes == second.nodes  # each side read in full, not one side's line against the other's head
    assert all(call.loaded for _, call in second.calls())


@pytest.mark.parametrize("run", [
    {"keep_trace": False},  # streamed: records let go as they are written
    {"budget": 6},  # budgeted: edges carry what was given and returned
    {"depth": 1},  # guesses at the leaves
])
def test_the_fast_and_the_text_parser_build_the_same_trace(tmp_path: Path, run: dict[str, object]) -> None:
    path = tmp_path / "t.json"
    hch.answer_sync("What is (1 + 2) * (1 + 2) + (1 + 2)?", **{"depth": 3, **run}, trace_path=path)  # type: ignore[arg-type]
    lazy, eager = trace_format.load(path), _eager(path)
    assert any(type(call) is LazyCall for _, call in lazy.calls())  # the fast path was taken
    assert list(lazy.nodes) == list(eager.nodes) and lazy.nodes == eager.nodes
    assert _edges(lazy) == _edges(eager) and lazy.meta == eager.meta


def test_a_streamed_run_writes_no_call_edge_its_calls_imply(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    hch.answer_sync(SUM, depth=3, trace_path=path, keep_trace=False)
    lines = path.read_text().splitlines()
    assert any('"kind":"call"}}' in line and line.startswith('{"node"') for line in lines)
    assert not [line for line in lines if line.startswith('{"edge"') and '"kind":"call"' in line]
    trace = trace_format.load(path)
    assert all(trace.node_calls(node) for node, _ in trace.workspaces())  # every workspace still has its calls


def test_a_loaded_workspace_answers_kind_and_depth_unread_and_the_rest_when_read(tmp_path: Path) -> None:
    path = _run(tmp_path)
    trace, eager = trace_format.load(path), _eager(path)
    workspaces = [data for _, data in trace.workspaces()]
    assert workspaces and all(type(data) is LazyWorkspace and not data.loaded for data in workspaces)
    assert [data["depth"] for data in workspaces] == [data["depth"] for _, data in eager.workspaces()]
    assert not any(data.loaded for data in workspaces)  # kind and depth come from the line's head
    root = trace.nodes[trace.root]
    assert root["question"] == "What is (1 + 2) * (1 + 2)?" and root.loaded and root == eager.nodes[trace.root]


def test_a_load_without_calls_keeps_every_workspace_and_delegation(tmp_path: Path) -> None:
    path = _run(tmp_path)
    bare, whole = trace_format.load(path, calls=False), _eager(path)
    assert not list(bare.calls()) and bare.meta == whole.meta
    assert dict(bare.workspaces()) == dict(whole.workspaces())
    assert _edges(bare) == [edge for edge in _edges(whole) if edge[2]["kind"] != "call"]
