"""Tokens and money per call, node, subtree and run, summed from a trace.

Calls served from the policy-call cache, or grafted from another run's trace, cost nothing in
this run and are not counted (as in `hch.record.summary`). A subtree
counts the calls of its own nodes (delegate edges only): a subtree reused from the subtree cache
was paid for where it was first expanded, so nothing is counted twice.
"""

from __future__ import annotations

from typing import Any

from hch.record.trace import Trace
from hch.workspace import Usage


def call_usage(data: dict[str, Any]) -> Usage:
    """What one call node spent in this run (zero for a cache hit, or a call grafted from another
    run's trace by a shared subtree cache: that run paid for it)."""
    if data.get("cached") or data.get("grafted"):
        return Usage()
    usage = data.get("usage") or {}
    return usage if isinstance(usage, Usage) else Usage.model_validate(usage)


def node_usage(trace: Trace, node: int) -> Usage:
    """What the policy calls made at one workspace spent."""
    total = Usage()
    for call in trace.node_calls(node):
        total = total + call_usage(trace.graph.nodes[call])
    return total


def subtree_nodes(trace: Trace, node: int) -> list[int]:
    """`node` and the workspaces it delegated to, recursively (not reused subtrees)."""
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(
            child for child, data in trace.graph.succ[current].items() if data["kind"] == "delegate"
        )
    return sorted(found)


def subtree_usage(trace: Trace, node: int) -> Usage:
    """What a node and everything it delegated spent."""
    total = Usage()
    for member in subtree_nodes(trace, node):
        total = total + node_usage(trace, member)
    return total


def run_usage(trace: Trace) -> Usage:
    """What the whole run spent: every call made (cache hits excluded)."""
    total = Usage()
    for _, data in trace.calls():
        total = total + call_usage(data)
    return total
