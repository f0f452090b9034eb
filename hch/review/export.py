"""Writing a trace in other formats: json, graphml, gexf, dot and jsonl.

- `json` is the trace as one node-link JSON document (networkx's `node_link_data` layout, trace
  schema 1; runs write schema 2, one record per line): lossless, `hch.load_trace` reads it back.
- `graphml`, `gexf` and `dot` hold only flat values, so nested attributes (a call's
  `input`, `output`, `usage`, `raw`, `attempts`; the run's `limits`, `summary`, ...) are
  written as JSON strings, and attributes that are None are left out. Ids stay the trace's.
- `jsonl` is one JSON record per workspace (question, answer, status, timings, calls,
  tokens, cost, parent), ready for `pandas.read_json(path, lines=True)`.

DOT is written here rather than through pydot/pygraphviz, which networkx needs for it and
which would be a heavy dependency for a text format this simple.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import networkx as nx

from hch.files import atomic_file
from hch.record import format as trace_format
from hch.record.trace import Trace

FORMATS = ("json", "graphml", "gexf", "dot", "jsonl")


def export(trace: Trace, path: str | Path, fmt: str) -> Path:
    """Write `trace` to `path` in format `fmt` (one of `FORMATS`)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    with atomic_file(path) as file:  # a reader never sees half an export
        write(trace, file, fmt)
    return path


def write(trace: Trace, file: BinaryIO, fmt: str) -> None:
    """Write `trace` in format `fmt` to an open binary file (e.g. stdout's buffer)."""
    if fmt == "json":
        trace_format.write_json(trace, file)
    elif fmt == "graphml":
        nx.write_graphml(flat_graph(trace), file)
    elif fmt == "gexf":
        nx.write_gexf(flat_graph(trace), file)
    elif fmt == "dot":
        file.write(to_dot(trace).encode("utf-8", "backslashreplace"))
    elif fmt == "jsonl":
        for record in workspace_records(trace):
            file.write(_json_line(record))
    else:
        raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")


def _json_line(record: dict[str, Any]) -> bytes:
    """One JSON Lines record; text that is not valid Unicode (a lone surrogate) is written escaped."""
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record) + "\n").encode("ascii")


def flat(value: Any) -> str | int | float | bool:
    """A value GraphML/GEXF/DOT can hold: scalars as they are, anything else as JSON text."""
    if isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_jsonable)


def _flat_attrs(attrs: dict[str, Any]) -> dict[str, str | int | float | bool]:
    return {key: flat(value) for key, value in attrs.items() if value is not None}


def flat_graph(trace: Trace) -> nx.DiGraph[int]:
    """A copy of the trace's graph with every attribute flattened (see the module docstring)."""
    graph: nx.DiGraph[int] = nx.DiGraph()
    graph.graph.update(_flat_attrs(trace.meta))
    for node, data in trace.graph.nodes(data=True):
        graph.add_node(node, **_flat_attrs(data))
    for source, target, data in trace.graph.edges(data=True):
        graph.add_edge(source, target, **_flat_attrs(data))
    return graph


def to_dot(trace: Trace) -> str:
    """The trace as Graphviz DOT text; workspaces are boxes labelled with their question and answer."""
    lines = ["digraph hch {", "  node [shape=box, fontname=\"Helvetica\"];"]
    for key, value in _flat_attrs(trace.meta).items():
        lines.append(f"  {_quote(key)}={_quote(value)};")
    for node, data in trace.graph.nodes(data=True):
        attrs = _flat_attrs(data)
        if data["kind"] == "workspace":
            attrs["label"] = f"#{node} n={data['depth']}\n{data['question']}\n→ {data.get('answer')}"
        else:
            attrs.update(label=f"call #{node}", shape="ellipse")
        lines.append(f"  {node} [{_dot_attrs(attrs)}];")
    for source, target, data in trace.graph.edges(data=True):
        lines.append(f"  {source} -> {target} [{_dot_attrs(_flat_attrs(data))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_attrs(attrs: dict[str, str | int | float | bool]) -> str:
    return ", ".join(f"{_quote(key)}={_quote(value)}" for key, value in attrs.items())


def _quote(value: str | int | float | bool) -> str:
    """A DOT double-quoted string: backslashes, quotes and line breaks escaped."""
    text = str(value).replace("\\", "\\\\").replace("\"", "\\\"")
    return "\"" + text.replace("\r", "").replace("\n", "\\n") + "\""


def workspace_records(trace: Trace) -> Iterator[dict[str, Any]]:
    """One flat record per workspace, in id order."""
    parents: dict[int, int] = {}
    for source, target, data in trace.graph.edges(data=True):
        if data["kind"] == "delegate":
            parents[target] = source
    for node, data in trace.workspaces():
        calls = [trace.graph.nodes[c] for c in trace.node_calls(node)]
        made = [c for c in calls if not c.get("cached")]
        ended = data.get("ended")
        yield {
            "id": node, "parent": parents.get(node), "question": data["question"], "depth": data["depth"],
            "policy": data["policy"], "answer": data.get("answer"), "status": data.get("status"),
            "started": data.get("started"), "ended": ended,
            "duration": None if ended is None else ended - float(data.get("started") or 0.0),
            "calls": len(calls), "cached_calls": len(calls) - len(made),
            "subquestions": len(trace.children(node)),
            "tokens": sum(c["usage"]["prompt_tokens"] + c["usage"]["completion_tokens"] for c in made),
            "cost": sum(c["usage"]["cost"] for c in made),
            "latency": sum(float(c.get("latency") or 0.0) for c in calls),
            "cycle_of": data.get("cycle_of"), "limit": data.get("limit"), "error": data.get("error"),
            "oracle": bool(data.get("oracle")),
        }


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"cannot export {type(value).__name__}")
