"""A trace as one self-contained HTML file: no network, inline JS and CSS.

The trace is embedded as JSON in a `<script type="application/json">` element (with `<`,
`>` and `&` written as `\\u003c`, `\\u003e`, `\\u0026`, so no policy text can close the
element), and the page only ever inserts it with `textContent`: text from policies is
shown, never interpreted. The tree renders lazily (children on expand, in chunks of 200),
so a 10,000-node trace opens at once.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from hch.files import write_atomic
from hch.record.trace import Trace
from hch.review import trace_stats

PLACEHOLDER = "__HCH_DATA__"


def page_data(trace: Trace) -> dict[str, Any]:
    """What the page needs, per workspace: its fields, its children and its calls."""
    figures = trace_stats.compute(trace)
    on_path = set(figures.critical_path_time.workspaces)
    critical_calls = set(figures.critical_path_time.calls)
    nodes: dict[int, dict[str, Any]] = {}
    messages = trace.meta.get("messages") or {}  # pointer mode: every message the nodes point to
    for node, data in trace.workspaces():
        calls = []
        for call in sorted(trace.node_calls(node)):
            c = trace.graph.nodes[call]
            calls.append({
                "id": call, "input": c["input"], "output": c.get("output"), "usage": c["usage"],
                "latency": float(c.get("latency") or 0.0), "cached": bool(c.get("cached")),
                "started": float(c.get("started") or 0.0), "raw": c.get("raw"),
                "attempts": c.get("attempts") or [], "error": c.get("error"),
                "error_traceback": c.get("error_traceback"), "critical": call in critical_calls,
            })
        made = [c for c in calls if not c["cached"]]
        nodes[node] = {
            "question": data["question"], "answer": data.get("answer"), "status": data.get("status"),
            "depth": data["depth"], "policy": data["policy"], "started": float(data.get("started") or 0.0),
            "ended": data.get("ended"), "cycle_of": data.get("cycle_of"), "limit": data.get("limit"),
            "error": data.get("error"), "critical": node in on_path, "oracle": bool(data.get("oracle")),
            "cached": any(c["cached"] for c in calls),
            "kids": [[child, edge["kind"] == "reuse", edge.get("repeats", 0)] for child, edge in trace.children(node)],
            "calls": calls,
            "pointers": [[name, ref, messages.get(ref[2:])] for name, ref in (data.get("pointers") or {}).items()],
            "expanded": [e["pointer"] + " after step " + str(e["step"]) for e in data.get("expansions") or []],
            "tokens": sum(c["usage"]["prompt_tokens"] + c["usage"]["completion_tokens"] for c in made),
            "cost": sum(c["usage"]["cost"] for c in made),
        }
        if data.get("budget") is not None:  # budgeted HCH: the calls given and spent
            nodes[node].update(budget=data["budget"], spent=data.get("spent"))
    return {
        "question": figures.question, "context": str(trace.meta.get("context") or ""), "root": trace.root,
        "nodes": nodes,
        "stats": figures.summary.line(), "critical_path": figures.critical_path_time.workspaces,
        "critical_time": figures.critical_path_time.length,
    }


def embed(data: Any) -> str:
    """JSON safe inside a `<script>` element: nothing in it can end the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render(trace: Trace) -> str:
    """The viewer page for a trace."""
    template = resources.files("hch.review").joinpath("viewer.html").read_text(encoding="utf-8")
    return template.replace(PLACEHOLDER, embed(page_data(trace)))


def write(trace: Trace, path: str | Path) -> Path:
    """Write the viewer page to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, render(trace).encode("utf-8", "backslashreplace"))
    return path
