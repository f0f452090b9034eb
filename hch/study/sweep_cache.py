"""A subtree cache for sweeps: besides identical subtrees, it reuses a finished subtree at another depth.

HCH_n and HCH_m of the same question differ only where the depth ran out. For a policy that
declares itself `depth_stable` (it acts the same at any depth that lets it finish, as the
offline experts do), a subtree that ended without a single guess, and that used L levels, is
exactly what that question gets at any depth >= L. So a 0..n sweep computes each such subtree
once and copies it (with depths relabelled, marked `reused_from_depth`) into the runs at other
depths. Policies without the declaration (an LLM sees its depth) get exact-depth reuse only.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from typing import Any

import networkx as nx

from hch.record.trace import Trace
from hch.run.call_budget import budget_place
from hch.run.policy import Policy, resolve
from hch.run.subtree_cache import Flight, SubtreeCache, SubtreeKey
from hch.workspace import SubAnswer, normalize_question


def stable_fingerprints(policy: Policy, depths: range) -> set[str]:
    """The fingerprints of the parts of `policy` acting at these depths, if every part declares
    `depth_stable`; otherwise none (a policy that sees its depth must not move between depths)."""
    leaves = [resolve(policy, d, root) for d in depths for root in (True, False)]
    if all(getattr(leaf, "depth_stable", False) is True for leaf in leaves):
        return {leaf.fingerprint for leaf in leaves}
    return set()


def context_hash(context: str) -> str:
    """The engine's subtree-key digest of a context."""
    return hashlib.sha256(context.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Saturated:
    """A finished subtree without guesses: valid at any depth >= `levels`."""

    levels: int
    depth: int
    result: SubAnswer
    node: int
    trace: Trace


class SweepCache(SubtreeCache):
    """`SubtreeCache` plus cross-depth reuse of guess-free subtrees of depth-stable policies."""

    def __init__(self, stable: set[str] | None = None) -> None:
        super().__init__()
        self.stable = stable or set()
        """Fingerprints of the depth-stable policies whose subtrees may move between depths."""
        self.cross_depth_hits = 0
        self._saturated: dict[tuple[str, str, str], list[Saturated]] = {}
        self._owned: dict[int, SubtreeKey] = {}
        self._shape: weakref.WeakKeyDictionary[Trace, dict[int, tuple[bool, int]]] = weakref.WeakKeyDictionary()

    def __contains__(self, key: SubtreeKey) -> bool:
        return super().__contains__(key) or self._fitting(key) is not None

    def claim(self, key: SubtreeKey) -> tuple[Flight, bool]:
        if super().__contains__(key):
            return super().claim(key)
        found = self._fitting(key)
        if found is None:
            flight, owner = super().claim(key)
            self._owned[id(flight)] = key
            return flight, owner
        copy, root = relabelled(found.trace, found.node, key[2] - found.depth)
        flight = Flight(result=found.result, node=root, trace=copy)
        flight.done.set()
        self._flights[key] = flight
        self.cross_depth_hits += 1
        return flight, False

    def finish(self, flight: Flight, result: SubAnswer, node: int, trace: Trace) -> None:
        super().finish(flight, result, node, trace)
        key = self._owned.pop(id(flight), None)
        if key is not None:
            self._offer(key, result, node, trace)

    def abandon(self, key: SubtreeKey, flight: Flight) -> None:
        self._owned.pop(id(flight), None)
        super().abandon(key, flight)

    def prime(self, trace: Trace) -> int:
        """Offer every finished subtree of a saved run (e.g. when a sweep resumes); returns how many."""
        digest = context_hash(str(trace.meta.get("context", "")))
        offered = 0
        for node, data in trace.workspaces():
            if data.get("status") not in ("ok", "guess") or data.get("answer") is None:
                continue
            copy = data.get("copy") or ""  # set on workspaces of runs with independent copies
            key = (data["policy"], normalize_question(data["question"]), data["depth"],
                   budget_place(digest + "/" + copy if copy else digest, data.get("budget")))
            result = SubAnswer(question=data["question"], answer=data["answer"], status=data["status"])
            if not super().__contains__(key):
                flight = Flight(result=result, node=node, trace=trace)
                flight.done.set()
                self._flights[key] = flight
            self._offer(key, result, node, trace)
            offered += 1
        return offered

    def _offer(self, key: SubtreeKey, result: SubAnswer, node: int, trace: Trace) -> None:
        fingerprint, question, depth, digest = key
        if result.status != "ok" or fingerprint not in self.stable:
            return
        clean, lowest = self._shape_of(trace, node)
        if clean:
            entry = Saturated(depth - lowest, depth, result, node, trace)
            self._saturated.setdefault((fingerprint, question, digest), []).append(entry)

    def _fitting(self, key: SubtreeKey) -> Saturated | None:
        fingerprint, question, depth, digest = key
        if fingerprint not in self.stable:
            return None
        entries = self._saturated.get((fingerprint, question, digest), ())
        return next((entry for entry in entries if entry.levels <= depth), None)

    def _shape_of(self, trace: Trace, node: int) -> tuple[bool, int]:
        """(no node below `node` is anything but ok, the lowest depth below it), memoized per trace."""
        memo = self._shape.setdefault(trace, {})
        stack = [node]
        while stack:
            current = stack[-1]
            if current in memo:
                stack.pop()
                continue
            children = [c for c, d in trace.graph.succ[current].items() if d["kind"] in ("delegate", "reuse")]
            pending = [c for c in children if c not in memo]
            if pending:
                stack.extend(pending)
                continue
            data = trace.graph.nodes[current]
            clean = data.get("status") == "ok" and all(memo[c][0] for c in children)
            memo[current] = (clean, min([data["depth"], *(memo[c][1] for c in children)]))
            stack.pop()
        return memo[node]


def relabelled(trace: Trace, node: int, shift: int) -> tuple[Trace, int]:
    """A copy of the subtree under `node`, root first, with every depth moved by `shift`."""
    keep = nx.descendants(trace.graph, node) | {node}
    order = [node, *sorted(keep - {node})]
    mapping = {old: new for new, old in enumerate(order)}
    graph: nx.DiGraph[int] = nx.DiGraph()
    for old in order:
        attrs: dict[str, Any] = dict(trace.graph.nodes[old])
        if attrs["kind"] == "workspace":
            attrs.setdefault("reused_from_depth", attrs["depth"])
            attrs["depth"] += shift
        elif isinstance(attrs.get("input"), dict) and "depth" in attrs["input"]:
            attrs["input"] = {**attrs["input"], "depth": attrs["input"]["depth"] + shift}
        graph.add_node(mapping[old], **attrs)
    for source, target, data in trace.graph.subgraph(keep).edges(data=True):
        graph.add_edge(mapping[source], mapping[target], **data)
    return Trace(graph), 0
