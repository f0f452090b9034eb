"""Statistics of a trace: the summary's counts plus shape and the critical path.

The critical path is the longest chain of policy calls that had to happen one after
another: a node's calls run in order, a subquestion's first call waits for the call that
asked it, and the call after a step of asking waits for the last call of every
subquestion of that step. No amount of concurrency beats it. It is measured twice: in
seconds (each call weighted by its latency) and in calls.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import networkx as nx
from pydantic import BaseModel

from hch.summary import Summary, summarize
from hch.trace import Trace

_END = -1  # a virtual sink every call leads to, so that a call's own weight is on its out-edge


class CriticalPath(BaseModel):
    """One longest chain of dependent policy calls."""

    length: float
    """Its length: seconds for the time path, a number of calls for the calls path."""
    calls: list[int]
    """The call node ids along it, first to last."""
    workspaces: list[int]
    """The workspace ids those calls belong to, in order (a workspace reappears after its subquestions)."""


class Stats(BaseModel):
    """Everything `hch show` reports about a trace."""

    question: str
    """The root question."""
    answer: str | None
    """The run's answer (None if it never finished)."""
    status: str
    """The run's status: ok, guess, error, interrupted, or unfinished (read from a journal)."""
    summary: Summary
    """The headline counts (nodes, calls, cache hits, cycles, guesses, errors, tokens, cost, time)."""
    workspaces_per_depth: dict[int, int]
    """How many workspaces ran at each HCH depth n."""
    calls_per_policy: dict[str, int]
    """Policy calls (made or served from the cache) per policy fingerprint."""
    critical_path_time: CriticalPath
    """The chain of dependent calls with the largest total latency."""
    critical_path_calls: CriticalPath
    """The chain of dependent calls with the most calls."""

    def text(self) -> str:
        """The figures as a few lines for the terminal."""
        s = self.summary
        depths = ", ".join(f"n={d}: {c}" for d, c in sorted(self.workspaces_per_depth.items(), reverse=True))
        lines = [
            f"status: {self.status}",
            f"nodes: {s.nodes} ({depths})",
            f"policy calls: {s.policy_calls} made, {s.call_cache_hits} from the call cache;"
            f" subtree reuses: {s.subtree_cache_hits}",
            f"cycles: {s.cycles} · guesses: {s.guesses} · errors: {s.errors}",
            f"tokens: {s.tokens} · cost: ${s.cost:.4f} · wall time: {s.wall_time:.3f}s",
            f"critical path: {self.critical_path_time.length:.3f}s over {len(self.critical_path_time.calls)} calls;"
            f" longest chain: {int(self.critical_path_calls.length)} calls",
        ]
        if len(self.calls_per_policy) > 1:
            lines += [f"  {count} calls: {policy}" for policy, count in sorted(self.calls_per_policy.items())]
        if s.limits_hit:
            lines.append("limits hit: " + ", ".join(s.limits_hit))
        return "\n".join(lines)


def compute(trace: Trace) -> Stats:
    """The statistics of a trace."""
    meta = trace.meta
    recorded = meta.get("summary") or {}
    summary = summarize(trace, wall_time=recorded.get("wall_time"))
    deps = dependencies(trace)
    return Stats(
        question=str(meta.get("question", trace.graph.nodes[trace.root]["question"])),
        answer=meta.get("answer"),
        status=str(meta.get("status", "unknown")),
        summary=summary,
        workspaces_per_depth=dict(Counter(data["depth"] for _, data in trace.workspaces())),
        calls_per_policy=dict(Counter(data["policy"] for _, data in trace.calls())),
        critical_path_time=_longest(trace, deps, "latency"),
        critical_path_calls=_longest(trace, deps, "one"),
    )


def dependencies(trace: Trace) -> nx.DiGraph[int]:
    """The DAG of calls: an edge u → v when call v could only start after call u finished."""
    deps: nx.DiGraph[int] = nx.DiGraph()
    deps.add_node(_END)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    first_after: dict[int, dict[int, int]] = {}
    asked_by: dict[int, dict[int, int]] = {}
    for node, _ in trace.workspaces():
        calls = sorted(trace.node_calls(node))
        if not calls:
            continue
        first[node], last[node] = calls[0], calls[-1]
        first_after[node], asked_by[node] = {}, {}
        for call in calls:
            steps = len(trace.graph.nodes[call]["input"].get("steps", ()))
            first_after[node].setdefault(steps, call)
            asked_by[node][steps] = call  # the last call before step `steps` ran: the one that asked
        for before, after in itertools.pairwise(calls):
            deps.add_edge(before, after)
        for call in calls:
            deps.add_edge(call, _END)
    for parent, child, data in trace.graph.edges(data=True):
        if data["kind"] == "call" or child not in last or parent not in first_after:
            continue
        step = int(data["step"])
        if data["kind"] == "delegate" and step in asked_by[parent]:
            deps.add_edge(asked_by[parent][step], first[child])  # a reused subtree had started already
        waiting = first_after[parent].get(step + 1)
        if waiting is not None:
            deps.add_edge(last[child], waiting)
    return deps


def _longest(trace: Trace, deps: nx.DiGraph[int], weight: str) -> CriticalPath:
    nodes = trace.graph.nodes
    for source, target in deps.edges:
        deps.edges[source, target]["latency"] = float(nodes[source].get("latency") or 0.0)
        deps.edges[source, target]["one"] = 1
    path = [n for n in nx.dag_longest_path(deps, weight=weight) if n != _END]
    length = sum(deps.edges[a, b][weight] for a, b in zip(path, [*path[1:], _END], strict=True)) if path else 0
    owners: list[int] = []
    for call in path:
        owner = int(nodes[call]["workspace"])
        if not owners or owners[-1] != owner:
            owners.append(owner)
    return CriticalPath(length=length, calls=path, workspaces=owners)


def as_json(stats: Stats) -> dict[str, Any]:
    """The statistics as plain JSON-ready data."""
    return stats.model_dump(mode="json")
