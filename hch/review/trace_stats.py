"""Statistics of a trace: the summary's counts plus shape and the critical path.

The critical path is the longest chain of policy calls that had to happen one after
another: a node's calls run in order, a subquestion's first call waits for the call that
asked it, and the call after a step of asking waits for the last call of every
subquestion of that step. No amount of concurrency beats it. It is measured twice: in
seconds (each call weighted by its latency) and in calls.
"""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from hch.record.summary import Summary, summarize
from hch.record.trace import Trace

if TYPE_CHECKING:
    import networkx as nx

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
    calls_read: bool = True
    """False when the figures were taken without reading the policy calls (`compute(calls=False)`): the
    summary is then the run's recorded one, and `calls_per_policy` and the critical paths are empty."""

    def text(self) -> str:
        """The figures as a few lines for the terminal."""
        s = self.summary
        depths = ", ".join(f"n={d}: {c}" for d, c in sorted(self.workspaces_per_depth.items(), reverse=True))
        lines = [
            f"status: {self.status}",
            f"nodes: {s.nodes} ({depths})",
            f"policy calls: {s.policy_calls} made, {s.call_cache_hits} from the call cache;"
            f" subtree reuses: {s.subtree_cache_hits}"
            + (f"; {s.invocations} policy invocations made" if s.invocations != s.policy_calls else "")
            + (f"; {s.unverified} answers unverified" if s.unverified else ""),
            f"cycles: {s.cycles} · guesses: {s.guesses} · errors: {s.errors}",
            f"tokens: {s.tokens} · cost: ${s.cost:.4f} · wall time: {s.wall_time:.3f}s",
            f"critical path: {self.critical_path_time.length:.3f}s over {len(self.critical_path_time.calls)} calls;"
            f" longest chain: {int(self.critical_path_calls.length)} calls" if self.calls_read else
            "critical path and calls per policy: not computed (the figures above are the run's recorded summary;"
            " `hch show --full` reads every call for them)",
        ]
        if len(self.calls_per_policy) > 1:
            lines += [f"  {count} calls: {policy}" for policy, count in sorted(self.calls_per_policy.items())]
        if s.limits_hit:
            lines.append("limits hit: " + ", ".join(s.limits_hit))
        return "\n".join(lines)


def _count(key: str, nodes: Iterator[tuple[int, dict[str, Any]]]) -> dict[Any, int]:
    """How many of `nodes` hold each value of `key` (no Python call per node: 10^5 in milliseconds)."""
    return dict(Counter(map(operator.itemgetter(key), map(operator.itemgetter(1), nodes))))


def compute(trace: Trace, calls: bool = True) -> Stats:
    """The statistics of a trace; without `calls`, those that need no policy call's content, with the
    run's recorded summary (see `Stats.calls_read`; a trace without one is read whole)."""
    meta = trace.meta
    recorded = meta.get("summary") or {}
    if not calls and isinstance(meta.get("summary"), dict):
        none = CriticalPath(length=0, calls=[], workspaces=[])
        return Stats(
            question=str(meta.get("question", trace.nodes[trace.root]["question"])), answer=meta.get("answer"),
            status=str(meta.get("status", "unknown")), summary=Summary.model_validate(recorded),
            workspaces_per_depth=_count("depth", trace.workspaces()),
            calls_per_policy={}, critical_path_time=none, critical_path_calls=none, calls_read=False,
        )
    summary = summarize(trace, wall_time=recorded.get("wall_time"))
    critical_time, critical_calls = _critical_paths(trace)
    return Stats(
        question=str(meta.get("question", trace.nodes[trace.root]["question"])),
        answer=meta.get("answer"),
        status=str(meta.get("status", "unknown")),
        summary=summary,
        workspaces_per_depth=_count("depth", trace.workspaces()),
        calls_per_policy=_count("policy", trace.calls()),
        critical_path_time=critical_time,
        critical_path_calls=critical_calls,
    )


def dependencies(trace: Trace) -> nx.DiGraph[int]:
    """The DAG of calls: an edge u → v when call v could only start after call u finished (as a networkx
    graph, for analysis: `compute` walks the same edges without one, and `hch show` imports no networkx here)."""
    import networkx as nx

    deps: nx.DiGraph[int] = nx.DiGraph()
    deps.add_node(_END)
    deps.add_edges_from(_dependency_edges(trace))
    return deps


def _dependency_edges(trace: Trace) -> Iterator[tuple[int, int]]:
    """The edges of `dependencies`, in the order it adds them."""
    nodes = trace.nodes
    calls_of: dict[int, list[int]] = {}
    for source, target, data in trace.edges():  # one pass, not one per workspace
        if data["kind"] == "call":
            calls_of.setdefault(source, []).append(target)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    first_after: dict[int, dict[int, int]] = {}
    asked_by: dict[int, dict[int, int]] = {}
    for node, _ in trace.workspaces():
        calls = sorted(calls_of.get(node, ()))
        if not calls:
            continue
        first[node], last[node] = calls[0], calls[-1]
        first_after[node], asked_by[node] = {}, {}
        for call in calls:
            steps = len(nodes[call]["input"].get("steps", ()))
            first_after[node].setdefault(steps, call)
            asked_by[node][steps] = call  # the last call before step `steps` ran: the one that asked
        yield from itertools.pairwise(calls)
        for call in calls:
            yield call, _END
    for parent, child, data in trace.edges():
        if data["kind"] == "call" or child not in last or parent not in first_after:
            continue
        step = int(data["step"])
        if data["kind"] == "delegate" and step in asked_by[parent]:
            yield asked_by[parent][step], first[child]  # a reused subtree had started already
        waiting = first_after[parent].get(step + 1)
        if waiting is not None:
            yield last[child], waiting


class _Dag:
    """The dependency DAG as plain dicts, kept in the insertion order an `nx.DiGraph` would have.

    `nx.dag_longest_path` over a 10^5-workspace trace spends seconds in graph views; the same
    algorithm over plain dicts, with the same node and edge order, finds the same path.
    """

    def __init__(self, edges: Iterator[tuple[int, int]]) -> None:
        self.succ: dict[int, dict[int, None]] = {_END: {}}
        self.pred: dict[int, dict[int, None]] = {_END: {}}
        succ, pred = self.succ, self.pred
        for u, v in edges:
            if u not in succ:
                succ[u], pred[u] = {}, {}
            if v not in succ:
                succ[v], pred[v] = {}, {}
            succ[u][v] = None
            pred[v][u] = None

    def topological_order(self) -> list[int]:
        """`nx.topological_sort`'s order: generations of nodes whose predecessors all came before."""
        indegree = {v: len(p) for v, p in self.pred.items() if p}
        generation = [v for v, p in self.pred.items() if not p]
        order: list[int] = []
        while generation:
            order += generation
            following: list[int] = []
            for node in generation:
                for child in self.succ[node]:
                    indegree[child] -= 1
                    if indegree[child] == 0:
                        following.append(child)
                        del indegree[child]
            generation = following
        if indegree:
            raise ValueError("the call dependencies have a cycle")
        return order

    def longest_path(self, order: list[int], weight: dict[int, float]) -> list[int]:
        """`nx.dag_longest_path` with every edge weighing its source's `weight` (same ties)."""
        dist: dict[int, tuple[float, int]] = {}
        pred = self.pred
        for v in order:
            best: tuple[float, int] = (0, v)
            first = True
            for before in pred[v]:  # the first predecessor with the largest distance, as max() picks
                length = dist[before][0] + weight[before]
                if first or length > best[0]:
                    best, first = (length, before), False
            dist[v] = best if best[0] >= 0 else (0, v)
        u: int | None = None
        v = max(dist, key=lambda x: dist[x][0])
        path = []
        while u != v:
            path.append(v)
            u = v
            v = dist[v][1]
        path.reverse()
        return path


def _critical_paths(trace: Trace) -> tuple[CriticalPath, CriticalPath]:
    """The critical paths in seconds and in calls."""
    nodes = trace.nodes
    dag = _Dag(_dependency_edges(trace))
    order = dag.topological_order()
    latency = {n: float(nodes[n].get("latency") or 0.0) for n in dag.succ if n != _END}
    one: dict[int, float] = dict.fromkeys(latency, 1)
    return _path(trace, dag.longest_path(order, latency), latency), _path(trace, dag.longest_path(order, one), one)


def _path(trace: Trace, path: list[int], weight: dict[int, float]) -> CriticalPath:
    nodes = trace.nodes
    path = [n for n in path if n != _END]
    length: float = sum(weight[n] for n in path) if path else 0
    owners: list[int] = []
    for call in path:
        owner = int(nodes[call]["workspace"])
        if not owners or owners[-1] != owner:
            owners.append(owner)
    return CriticalPath(length=length, calls=path, workspaces=owners)


def as_json(stats: Stats) -> dict[str, Any]:
    """The statistics as plain JSON-ready data."""
    return stats.model_dump(mode="json")
