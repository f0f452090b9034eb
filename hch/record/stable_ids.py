"""Node ids that survive a resumed session.

Ids are given in the order nodes are created, and which nodes come first depends on timing: in a
resumed session the calls served from the cache finish at once, so the same workspace would get
another id than the one a person was shown before stopping. A run that writes to the trace file an
earlier run of the same question left (`--trace PATH` again, or a sweep's run) therefore gives each
workspace at the same place in the tree, asking the same question, the id it had there; new
workspaces get ids above all of those.
"""

from __future__ import annotations

from pathlib import Path

from hch.errors import HchError
from hch.record.trace import Trace
from hch.workspace import normalize_question

Place = tuple[tuple[int, int], ...]
"""A workspace's place in the tree: the (step, order) of each delegation from the root down."""


def previous_ids(path: Path, question: str, depth: int, policy: str, context: str) -> dict[Place, tuple[int, str]]:
    """Each place of the earlier run's tree at `path` with its workspace id and (normalized) question; empty
    when there is no readable earlier trace of the same question, depth, policy and context."""
    from hch.record.format import read_all
    from hch.record.journal import load_any

    try:
        previous = read_all(load_any(path))
    except (HchError, OSError, ValueError):
        return {}
    meta = previous.meta
    same = (meta.get("question"), meta.get("depth"), meta.get("policy"), meta.get("context", ""))
    if same != (question, depth, policy, context) or not any(True for _ in previous.workspaces()):
        return {}
    return places(previous)


def places(trace: Trace) -> dict[Place, tuple[int, str]]:
    """Every workspace reached from the root by delegation, by its place (a reused subtree has its own)."""
    found: dict[Place, tuple[int, str]] = {}
    stack: list[tuple[int, Place]] = [(trace.root, ())]
    while stack:
        node, place = stack.pop()
        found[place] = (node, normalize_question(trace.graph.nodes[node]["question"]))
        for child, edge in trace.children(node):
            if edge["kind"] == "delegate" and not trace.graph.nodes[child].get("grafted"):
                stack.append((child, (*place, (edge["step"], edge["order"]))))
    return found
