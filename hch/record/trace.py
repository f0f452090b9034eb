"""The record of a run as a networkx DiGraph, built while the run goes.

Nodes are workspaces (`kind="workspace"`) and policy calls (`kind="call"`), numbered
from 0 in one id space. Edges are `delegate` (a parent asked a subquestion and a new
subtree answered it), `reuse` (a subtree answered it from the subtree cache) and
`call` (a workspace made a policy call). Listeners (e.g. a journal) see every change.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import networkx as nx

Listener = Callable[[str, dict[str, Any]], None]
"""Called with ("node", attributes with "id") or ("edge", attributes with "source"/"target")."""


class Trace:
    """A growing graph of workspaces and policy calls, with the run's metadata in `graph.graph`."""

    def __init__(self, graph: nx.DiGraph[int] | None = None, **meta: Any) -> None:
        self.graph: nx.DiGraph[int] = graph if graph is not None else nx.DiGraph()
        self.graph.graph.update(meta)
        self._ids = itertools.count(max(self.graph.nodes, default=-1) + 1)
        self.listeners: list[Listener] = []

    @property
    def meta(self) -> dict[str, Any]:
        """Run-level metadata: question, depth, policy, limits, summary, ..."""
        return self.graph.graph

    @property
    def root(self) -> int:
        """The id of the root workspace (the first one recorded)."""
        return min(node for node, data in self.workspaces())

    def workspaces(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every workspace node with its attributes, in id order."""
        for node, data in self.graph.nodes(data=True):
            if data["kind"] == "workspace":
                yield node, data

    def calls(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every policy-call node with its attributes, in id order."""
        for node, data in self.graph.nodes(data=True):
            if data["kind"] == "call":
                yield node, data

    def children(self, node: int) -> list[tuple[int, dict[str, Any]]]:
        """The workspaces that answered `node`'s subquestions, with the edge data, in asking order."""
        out = [
            (child, data)
            for child, data in self.graph.succ[node].items()
            if data["kind"] in ("delegate", "reuse")
        ]
        return sorted(out, key=lambda item: (item[1]["step"], item[1]["order"]))

    def node_calls(self, node: int) -> list[int]:
        """The policy calls a workspace made, in order."""
        return [c for c, data in self.graph.succ[node].items() if data["kind"] == "call"]

    def add_node(self, kind: str, /, node_id: int | None = None, **attrs: Any) -> int:
        """Record a new node and return its id: `node_id` if given and free (see `reserve`), else the next one."""
        node = node_id if node_id is not None and node_id not in self.graph else next(self._ids)
        self.graph.add_node(node, kind=kind, **attrs)
        self._emit_node(node)
        return node

    def reserve(self, upto: int) -> None:
        """Give new nodes ids above `upto`: the ids up to it are kept for nodes added with `node_id`."""
        self._ids = itertools.count(max(upto + 1, max(self.graph.nodes, default=-1) + 1))

    def update_node(self, node: int, **attrs: Any) -> None:
        """Change attributes of a recorded node."""
        self.graph.nodes[node].update(attrs)
        self._emit_node(node)

    def add_edge(self, source: int, target: int, kind: str, **attrs: Any) -> None:
        """Record an edge; a repeated (source, target) pair keeps its first record and counts repeats."""
        if self.graph.has_edge(source, target):
            data = self.graph.edges[source, target]
            data["repeats"] = data.get("repeats", 0) + 1
        else:
            self.graph.add_edge(source, target, kind=kind, **attrs)
            data = self.graph.edges[source, target]
        for listener in self.listeners:
            listener("edge", {"source": source, "target": target, **data})

    def update_edge(self, source: int, target: int, **attrs: Any) -> None:
        """Change attributes of a recorded edge."""
        data = self.graph.edges[source, target]
        data.update(attrs)
        for listener in self.listeners:
            listener("edge", {"source": source, "target": target, **data})

    def graft(self, other: Trace, node: int) -> int:
        """Copy `node` and everything below it from another trace; return the copy's id here.

        The copy's root gets the smallest new id (so a run whose root was grafted still finds its
        root first) and every copied node is marked `grafted=True` (its calls were made elsewhere).
        """
        keep = nx.descendants(other.graph, node) | {node}
        order = [node, *sorted(keep - {node})]
        mapping = {old: next(self._ids) for old in order}
        sub = nx.relabel_nodes(other.graph.subgraph(keep), mapping, copy=True)
        for old_node in order:
            new_node = mapping[old_node]
            attrs = {**sub.nodes[new_node], "grafted": True}
            if attrs.get("kind") == "call" and attrs.get("workspace") in mapping:
                attrs["workspace"] = mapping[attrs["workspace"]]  # the journal rebuilds call edges from it
            self.graph.add_node(new_node, **attrs)
            self._emit_node(new_node)
        for source, target, data in sub.edges(data=True):
            self.add_edge(source, target, **data)
        return mapping[node]

    def _emit_node(self, node: int) -> None:
        for listener in self.listeners:
            listener("node", {"id": node, **self.graph.nodes[node]})
