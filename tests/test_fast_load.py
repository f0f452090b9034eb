"""The fast loader (`parse_lazily`) against the text parser on hand-altered record files: the same trace,
node for node and edge for edge in the same order (keys too), or the same one-line error."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hch
from hch.errors import TraceError
from hch.record import format as trace_format
from hch.record.lazy_record import LazyCall

QUESTION = "What is (1 + 2) * (1 + 2) + (1 + 2)?"
Lines = list[bytes]


def _run(tmp_path: Path, **options: Any) -> Lines:
    path = tmp_path / "run.json"
    hch.answer_sync(QUESTION, **{"depth": 3, **options}, trace_path=path)
    return path.read_bytes().split(b"\n")  # the last is empty: the file ends with a newline


def _record(line: bytes) -> dict[str, Any]:
    return json.loads(line)  # type: ignore[no-any-return]


def _numbers(lines: Lines, kind: str) -> list[int]:
    """The numbers of the lines holding `kind` records ("node", "edge") of the run."""
    return [n for n, line in enumerate(lines) if line.startswith(b'{"%s"' % kind.encode())]


def _outcome(load: Callable[[], trace_format.Trace]) -> tuple[Any, ...]:
    try:
        trace = load()
    except TraceError as exc:
        return ("error", str(exc))
    return ("trace", [(node, list(data.items())) for node, data in trace.nodes.items()],
            [(source, target, list(data.items())) for source, target, data in trace.edges()], trace.meta, trace.root)


def _both(tmp_path: Path, lines: Lines) -> tuple[tuple[Any, ...], tuple[Any, ...], bool]:
    """The fast load's outcome, the text parser's, and whether the fast path kept calls lazily."""
    path = tmp_path / "altered.json"
    path.write_bytes(b"\n".join(lines))
    fast = _outcome(lambda: trace_format.load(path))
    lazy = fast[0] == "trace" and any(type(data) is LazyCall for data in trace_format.load(path).nodes.values())
    text = _outcome(lambda: trace_format.parse(path.read_text(encoding="utf-8"), str(path)))
    return fast, text, lazy


def _as_is(lines: Lines) -> None:
    pass


def _repeat_an_edge_with_repeats(lines: Lines) -> None:  # a parsed edge record between taken ones
    number = _numbers(lines, "edge")[0]
    edge = _record(lines[number])["edge"]
    lines.insert(_numbers(lines, "edge")[-1], json.dumps({"edge": {**edge, "repeats": 2}}).encode())


def _write_call_edges(lines: Lines) -> None:  # what streamed runs of earlier versions wrote for some calls
    for number in reversed(_numbers(lines, "node")[1::3]):
        node = _record(lines[number])["node"]
        if node["kind"] == "call":
            edge = {"edge": {"source": node["workspace"], "target": node["id"], "kind": "call"}}
            lines.insert(number + 1, json.dumps(edge, separators=(",", ":")).encode())


def _duplicate_an_edge_line(lines: Lines) -> None:  # the last record wins, in the place of the first
    lines.insert(len(lines) - 2, lines[_numbers(lines, "edge")[1]])


def _reorder_a_workspace(lines: Lines) -> None:  # another key order: parsed, not taken
    ids = [_record(lines[n])["node"]["id"] for n in _numbers(lines, "node")]
    number = next(n for n in reversed(_numbers(lines, "node"))
                  if b'"kind":"workspace"' in lines[n] and ids.count(_record(lines[n])["node"]["id"]) == 1)
    node = _record(lines[number])["node"]
    lines[number] = json.dumps({"node": dict(reversed(list(node.items())))}).encode()


def _rewrite_a_workspace_later(lines: Lines) -> None:  # a workspace's second line, in another key order
    number = next(n for n in _numbers(lines, "node") if b'"kind":"workspace"' in lines[n])
    node = _record(lines[number])["node"]
    lines.insert(len(lines) - 2, json.dumps({"node": dict(reversed(list(node.items())))}).encode())


def _reorder_an_edge(lines: Lines) -> None:
    number = _numbers(lines, "edge")[0]
    lines[number] = json.dumps({"edge": dict(reversed(list(_record(lines[number])["edge"].items())))}).encode()


def _leading_zero_id(lines: Lines) -> None:  # not JSON: an error at load, as the text parser says
    number = next(n for n in _numbers(lines, "node") if b'"kind":"call"' in lines[n])
    lines[number] = lines[number].replace(b'{"node":{"id":', b'{"node":{"id":0', 1)


def _leading_zero_step(lines: Lines) -> None:
    number = _numbers(lines, "edge")[0]
    lines[number] = lines[number].replace(b'"step":', b'"step":0', 1)


def _huge_step(lines: Lines) -> None:  # beyond what the pattern takes: parsed, and still an int
    number = _numbers(lines, "edge")[0]
    lines[number] = lines[number].replace(b'"step":', b'"step":1234567890123456789012345', 1)


def _call_edge_from_another_workspace(lines: Lines) -> None:
    call = next(_record(lines[n])["node"] for n in _numbers(lines, "node") if b'"kind":"call"' in lines[n])
    root = _record(lines[1])["node"]["id"]
    workspaces = [_record(lines[n])["node"]["id"] for n in _numbers(lines, "node") if b'"kind":"workspace"' in lines[n]]
    other = next(node for node in workspaces if node not in (root, call["workspace"]))
    lines.insert(2, b'{"edge":{"source":%d,"target":%d,"kind":"call"}}' % (other, call["id"]))


def _delegation_to_a_call(lines: Lines) -> None:
    number = _numbers(lines, "edge")[0]
    call = next(_record(lines[n])["node"]["id"] for n in _numbers(lines, "node") if b'"kind":"call"' in lines[n])
    edge = _record(lines[number])["edge"]
    lines[number] = lines[number].replace(b'"target":%d,' % edge["target"], b'"target":%d,' % call, 1)


def _two_askers(lines: Lines) -> None:
    edge = _record(lines[_numbers(lines, "edge")[0]])["edge"]
    lines.insert(len(lines) - 2, json.dumps({"edge": {**edge, "source": edge["target"] + 1000}},
                                            separators=(",", ":")).encode())


def _a_call_id_twice(lines: Lines) -> None:
    number = next(n for n in _numbers(lines, "node") if b'"kind":"call"' in lines[n])
    lines.insert(len(lines) - 2, lines[number])


def _a_cycle(lines: Lines) -> None:
    edge = _record(lines[_numbers(lines, "edge")[0]])["edge"]
    lines.insert(len(lines) - 2, b'{"edge":{"source":%d,"target":%d,"step":5,"order":0,"kind":"reuse"}}'
                 % (edge["target"], edge["source"]))


def _graft_a_call(lines: Lines) -> None:  # copied by an earlier hch: marked, its workspace one of elsewhere
    number = max(n for n in _numbers(lines, "node") if b'"kind":"call"' in lines[n])
    call = _record(lines[number])["node"]
    lines.insert(number + 1, b'{"edge":{"source":%d,"target":%d,"kind":"call"}}' % (call["workspace"], call["id"]))
    lines[number] = json.dumps({"node": {**call, "workspace": 123456, "grafted": True}}).encode()


def _graft_a_call_in_place(lines: Lines) -> None:  # marked, its workspace the right one
    number = max(n for n in _numbers(lines, "node") if b'"kind":"call"' in lines[n])
    lines[number] = lines[number].replace(b'"kind":"call"}}', b'"grafted":true,"kind":"call"}}')


ALTERATIONS: dict[str, tuple[Callable[[Lines], None], bool | None]] = {  # and whether the fast path still applies
    "as runs write it": (_as_is, True),
    "an edge written again with repeats": (_repeat_an_edge_with_repeats, True),
    "call edges written for some calls": (_write_call_edges, True),
    "an edge line twice": (_duplicate_an_edge_line, True),
    "a workspace in another key order": (_reorder_a_workspace, True),
    "a workspace written again in another key order": (_rewrite_a_workspace_later, None),  # if the first was taken
    "an edge in another key order": (_reorder_an_edge, True),
    "a node id with a leading zero": (_leading_zero_id, False),
    "a step with a leading zero": (_leading_zero_step, False),
    "a step past 64 bits": (_huge_step, True),
    "a call edge from another workspace": (_call_edge_from_another_workspace, False),
    "a delegation to a call": (_delegation_to_a_call, False),
    "a workspace delegated by two askers": (_two_askers, False),
    "a call's id used twice": (_a_call_id_twice, False),
    "a cycle of delegations": (_a_cycle, False),
    "a call copied with another run's workspace": (_graft_a_call, False),
    "a call copied with its own workspace": (_graft_a_call_in_place, True),
}


@pytest.mark.parametrize("name", list(ALTERATIONS))
@pytest.mark.parametrize("options", [{}, {"budget": 6}, {"keep_trace": False}], ids=["plain", "budget", "streamed"])
def test_the_fast_loader_builds_what_the_text_parser_builds(tmp_path: Path, name: str, options: dict[str, Any]) -> None:
    alter, fast_path = ALTERATIONS[name]
    lines = _run(tmp_path, **options)
    alter(lines)
    fast, text, lazy = _both(tmp_path, lines)
    assert fast == text
    if fast_path is not None:
        assert lazy == (fast_path and fast[0] == "trace")
    if fast[0] == "error":
        assert "\n" not in fast[1]


def test_a_load_without_calls_skips_calls_written_in_any_of_the_taken_shapes(tmp_path: Path) -> None:
    lines = _run(tmp_path)
    _write_call_edges(lines)
    path = tmp_path / "altered.json"
    path.write_bytes(b"\n".join(lines))
    bare, whole = trace_format.load(path, calls=False), trace_format.load(path)
    assert not list(bare.calls()) and dict(bare.workspaces()) == dict(whole.workspaces())
    assert [(u, v, d) for u, v, d in bare.edges()] == [(u, v, d) for u, v, d in whole.edges() if d["kind"] != "call"]


def test_nodes_written_out_of_id_order_still_load_in_id_order(tmp_path: Path) -> None:
    lines = _run(tmp_path)
    nodes = _numbers(lines, "node")
    body = [lines[n] for n in nodes]
    for n, line in zip(nodes, reversed(body), strict=True):
        lines[n] = line
    fast, text, lazy = _both(tmp_path, lines)
    assert lazy and [node for node, _ in fast[1]] == sorted(node for node, _ in fast[1])
    # the text parser keeps the file's order of nodes, and of the call edges it adds for them
    assert fast[1] == sorted(text[1]) and sorted(fast[2]) == sorted(text[2]) and fast[3:] == text[3:]


def _generation(obj: object) -> int | None:
    return next((n for n in range(3) if any(other is obj for other in gc.get_objects(generation=n))), None)


def test_a_loaded_trace_goes_to_the_oldest_generation_unless_an_application_froze_objects(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    hch.answer_sync(QUESTION, depth=2, trace_path=path)
    gc.unfreeze()  # what earlier tests froze (`hch show` run in this process freezes what it loaded)
    gc.collect()
    root = trace_format.load(path).nodes[0]
    assert _generation(root) == 2 and gc.isenabled()  # no young collection walks it to find it alive
    kept = [root]  # an application's object, frozen below
    gc.freeze()
    try:
        root = trace_format.load(path).nodes[0]
        assert _generation(kept) is None and _generation(root) in (0, 1)  # the application's freeze stands
    finally:
        gc.unfreeze()
