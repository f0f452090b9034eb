"""The record of a run: workspaces, policy calls and the edges between them, built while the run goes.

Nodes are workspaces (`kind="workspace"`) and policy calls (`kind="call"`), numbered
from 0 in one id space. Edges are `delegate` (a parent asked a subquestion and a new
subtree answered it), `reuse` (a subtree answered it from the subtree cache) and
`call` (a workspace made a policy call). Listeners see every change; sinks (a trace file
being written, see `hch.record.journal`) get the live attribute dicts without a copy.

The trace holds plain dicts: a node's attributes, and each node's successors with the edge's
attributes. `Trace.graph`, the networkx DiGraph analysis and export use, is made on first use
from those same dicts (no copy, so it costs little and stays in step with later changes).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import networkx as nx  # imported where the graph is made: reading a trace does not need it (~0.13 s)

Listener = Callable[[str, dict[str, Any]], None]
"""Called with ("node", attributes with "id") or ("edge", attributes with "source"/"target")."""

CHILD_EDGES = ("delegate", "reuse")


class Sink(Protocol):
    """Receives every change with the trace's own attribute dicts (to read, never to keep or change
    beyond the current event-loop iteration: they go on changing)."""

    def node(self, node: int, attrs: dict[str, Any]) -> None: ...

    def edge(self, source: int, target: int, attrs: dict[str, Any]) -> None: ...


class Trace:
    """A growing record of workspaces and policy calls, with the run's metadata in `meta`."""

    def __init__(self, graph: nx.DiGraph[int] | None = None, **meta: Any) -> None:
        self._graph: nx.DiGraph[int] | None = None
        if graph is not None:
            self._node: dict[int, dict[str, Any]] = {n: data for n, data in graph.nodes(data=True)}
            self._succ: dict[int, dict[int, dict[str, Any]]] = {n: dict(s) for n, s in graph.succ.items() if s}
            self._meta: dict[str, Any] = graph.graph
        else:
            self._node, self._succ, self._meta = {}, {}, {}
        self._meta.update(meta)
        self._ids = itertools.count(max(self._node, default=-1) + 1)
        self.listeners: list[Listener] = []
        self.sinks: list[Sink] = []
        self.tally: Any = None
        """For a streamed trace, the counts of the records it let go (a `hch.record.summary.Tally`)."""
        self._retain = True
        self._root: int | None = None
        """The root's id once known (a loader's); None: found by a look at every workspace."""

    @classmethod
    def of(cls, meta: dict[str, Any], nodes: dict[int, dict[str, Any]],
           succ: dict[int, dict[int, dict[str, Any]]], root: int | None = None) -> Trace:
        """A trace holding these dicts as they are (a loader's: nothing copied); `root`, if the loader
        knows it, the smallest workspace id."""
        trace = cls()
        trace._meta, trace._node, trace._succ, trace._root = meta, nodes, succ, root
        trace._ids = itertools.count(max(nodes, default=-1) + 1)
        return trace

    def stream(self, tally: Any) -> None:
        """From now on keep only what is in flight: a call, a finished workspace and its edges go to the
        sinks (the trace file) and are let go, counted in `tally` (a `hch.record.summary.Tally`), so memory
        follows the work in flight, not the nodes recorded. Needs a sink; the trace then holds the
        metadata, the running workspaces and nothing else (read the file for the rest)."""
        self._retain = False
        self.tally = tally

    @property
    def retains(self) -> bool:
        """Whether the trace keeps every record (False once `stream` was called)."""
        return self._retain

    @property
    def meta(self) -> dict[str, Any]:
        """Run-level metadata: question, depth, policy, limits, summary, ..."""
        return self._meta

    @property
    def nodes(self) -> dict[int, dict[str, Any]]:
        """Every node's attributes by id (read them; change them through `update_node`)."""
        return self._node

    def node(self, node: int) -> dict[str, Any]:
        """The attributes of one node (KeyError if the trace has no such node)."""
        return self._node[node]

    def edges(self) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """Every edge as (source, target, attributes)."""
        for source, targets in self._succ.items():
            for target, data in targets.items():
                yield source, target, data

    def successors(self, node: int) -> dict[int, dict[str, Any]]:
        """The nodes below `node` (children and calls) with the edge attributes."""
        return self._succ.get(node, _EMPTY)

    def __contains__(self, node: object) -> bool:
        return node in self._node

    @property
    def graph(self) -> nx.DiGraph[int]:
        """The trace as a networkx DiGraph (run metadata in `graph.graph`), made on first use.

        It shares the trace's dicts, so it follows later changes made through the trace; change
        the trace through the trace's own methods, not through the graph.
        """
        if self._graph is None:
            import networkx

            graph: nx.DiGraph[int] = networkx.DiGraph()
            for node in self._node:
                if node not in self._succ:
                    self._succ[node] = {}
            pred: dict[int, dict[int, dict[str, Any]]] = {node: {} for node in self._node}
            for source, targets in self._succ.items():
                for target, data in targets.items():
                    pred[target][source] = data
            graph.graph, graph._node, graph._adj, graph._succ, graph._pred = (  # type: ignore[attr-defined]
                self._meta, self._node, self._succ, self._succ, pred)
            self._graph = graph
        return self._graph

    @property
    def root(self) -> int:
        """The id of the root workspace (the first one recorded)."""
        if self._root is None:
            return min(node for node, data in self.workspaces())
        return self._root

    def workspaces(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every workspace node with its attributes, in id order."""
        return self._of_kind("workspace")

    def calls(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every policy-call node with its attributes, in id order."""
        return self._of_kind("call")

    def _of_kind(self, kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
        # a filter without a Python call per node: 10^5 workspaces are counted in milliseconds
        kinds = map(_KIND, self._node.values())
        return itertools.compress(self._node.items(), map(operator.eq, kinds, itertools.repeat(kind)))

    def children(self, node: int) -> list[tuple[int, dict[str, Any]]]:
        """The workspaces that answered `node`'s subquestions, with the edge data, in asking order."""
        out = [(child, data) for child, data in self._succ.get(node, _EMPTY).items() if data["kind"] in CHILD_EDGES]
        return sorted(out, key=lambda item: (item[1]["step"], item[1]["order"]))

    def node_calls(self, node: int) -> list[int]:
        """The policy calls a workspace made, in order."""
        return [c for c, data in self._succ.get(node, _EMPTY).items() if data["kind"] == "call"]

    def add_node(self, kind: str, /, node_id: int | None = None, **attrs: Any) -> int:
        """Record a new node and return its id: `node_id` if given and free (see `reserve`), else the next one."""
        node = node_id if node_id is not None and node_id not in self._node else next(self._ids)
        attrs["kind"] = kind
        self._put(node, attrs)
        return node

    def _put(self, node: int, attrs: dict[str, Any]) -> None:
        self._node[node] = attrs
        if self._root is not None and node < self._root and attrs["kind"] == "workspace":
            self._root = node
        if self._graph is not None:
            self._succ.setdefault(node, {})
            self._graph._pred.setdefault(node, {})  # type: ignore[attr-defined]
            self._graph.__networkx_cache__.clear()
        self._emit_node(node, attrs)
        if not self._retain and _final(attrs):
            self._let_go(node)

    def _let_go(self, node: int) -> None:
        """Forget a finished record of a streamed trace (the sinks have it), counting it."""
        attrs = self._node.pop(node)
        self._succ.pop(node, None)
        if node == self._root:
            self._root = None
        if attrs["kind"] == "workspace":
            self.tally.workspace(attrs)
        elif attrs["kind"] == "call":
            self.tally.call(attrs)

    def reserve(self, upto: int) -> None:
        """Give new nodes ids above `upto`: the ids up to it are kept for nodes added with `node_id`."""
        self._ids = itertools.count(max(upto + 1, max(self._node, default=-1) + 1))

    def update_node(self, node: int, **attrs: Any) -> None:
        """Change attributes of a recorded node."""
        if not self._retain and node not in self._node:
            return  # a streamed trace let it go when it finished
        data = self._node[node]
        data.update(attrs)
        self._emit_node(node, data)
        if not self._retain and _final(data):
            self._let_go(node)

    def add_edge(self, source: int, target: int, kind: str, **attrs: Any) -> None:
        """Record an edge; a repeated (source, target) pair keeps its first record and counts repeats."""
        self._edge(source, target, kind, attrs)

    def _edge(self, source: int, target: int, kind: str, attrs: dict[str, Any], copied: bool = False) -> None:
        below = self._succ.get(source)
        if below is None:
            if not self._retain and source not in self._node:  # a streamed trace's finished (or copied) node
                attrs["kind"] = kind
                self.tally.edge(attrs, grafted=copied)
                for sink in self.sinks:
                    sink.edge(source, target, attrs)
                return
            below = self._succ[source] = {}
        data = below.get(target)
        if data is not None:
            data["repeats"] = data.get("repeats", 0) + 1
            if not self._retain:
                self.tally.repeat()
        else:
            attrs["kind"] = kind
            data = below[target] = attrs
            if not self._retain:
                self.tally.edge(data)
            if self._graph is not None:
                self._graph._pred.setdefault(target, {})[source] = data  # type: ignore[attr-defined]
                self._graph.__networkx_cache__.clear()
        for sink in self.sinks:
            sink.edge(source, target, data)
        for listener in self.listeners:
            listener("edge", {"source": source, "target": target, **data})

    def update_edge(self, source: int, target: int, **attrs: Any) -> None:
        """Change attributes of a recorded edge (a streamed trace's edge whose asker it let go: ignored)."""
        data = self._succ.get(source, _EMPTY).get(target)
        if data is None:
            if not self._retain:
                return
            raise KeyError(f"no edge {source} -> {target} in the trace")
        data.update(attrs)
        for sink in self.sinks:
            sink.edge(source, target, data)
        for listener in self.listeners:
            listener("edge", {"source": source, "target": target, **data})

    def below(self, node: int) -> list[int]:
        """`node` and every node reachable from it, `node` first, then in id order."""
        seen = {node}
        stack = [node]
        while stack:
            for child in self._succ.get(stack.pop(), _EMPTY):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return [node, *sorted(seen - {node})]

    def graft(self, other: Trace, node: int) -> int:
        """Copy `node` and everything below it from another trace; return the copy's id here.

        The copy's root gets the smallest new id (so a run whose root was grafted still finds its
        root first) and every copied node is marked `grafted=True` (its calls were made elsewhere).
        """
        if not other._retain:
            raise ValueError("a streamed trace keeps no finished subtree to copy (see Trace.stream)")
        order = other.below(node)
        mapping = {old: next(self._ids) for old in order}
        for old_node in order:
            attrs = {**other._node[old_node], "grafted": True}
            if attrs.get("kind") == "call" and attrs.get("workspace") in mapping:
                attrs["workspace"] = mapping[attrs["workspace"]]  # the journal rebuilds call edges from it
            self._put(mapping[old_node], attrs)
        for old_node in order:
            for target, data in other._succ.get(old_node, _EMPTY).items():
                copy = dict(data)
                self._edge(mapping[old_node], mapping[target], copy.pop("kind"), copy, copied=True)
        return mapping[node]

    def _emit_node(self, node: int, attrs: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.node(node, attrs)
        for listener in self.listeners:
            listener("node", {"id": node, **attrs})


def _final(attrs: dict[str, Any]) -> bool:
    """Whether a record will not change again: a call, or a workspace that ended."""
    kind = attrs["kind"]
    return bool(kind == "call" or (kind == "workspace" and attrs.get("status", "running") != "running"))


_EMPTY: dict[int, dict[str, Any]] = {}
_KIND = operator.itemgetter("kind")
