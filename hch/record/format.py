"""The trace file: versioned node-link JSON validated by pydantic, saved atomically."""

from __future__ import annotations

import gc
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal, NotRequired

import networkx as nx
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from hch.errors import TraceError, read_text
from hch.files import atomic_file
from hch.record.trace import Trace
from hch.validate import load_json
from hch.workspace import Status, Usage

FORMAT = "hch-trace"
SCHEMA_VERSION = 1


class WorkspaceNode(BaseModel):
    """One node of HCH: a question at a depth, and how it was answered.

    Runs with `copies="independent"` also record `copy` (a string): the node's copy id, as in
    `Workspace.copy`; merged runs leave it out (so their traces are as before).

    Runs in pointer mode (`hch.run.pointers`; other runs leave both out) also record `pointers`, the
    node's view names to the run's pointers (`{"$1": "$m<id>", ...}`), and `expansions`, the pointers
    H expanded there in order (`[{"pointer": "$1", "message": "$m<id>", "step": 0}, ...]`, `step` being
    the steps of asking before it). Their `question` and `answer` then hold run pointers `$m<id>`,
    whose contents are in the run metadata's `messages`.
    """

    model_config = ConfigDict(extra="allow")

    id: int
    """Node id, unique within the trace (shared with call nodes)."""
    kind: Literal["workspace"]
    question: str
    """The question this node answered."""
    depth: int
    """The n of this node's HCH_n."""
    policy: str
    """Fingerprint of the policy that acted here."""
    answer: str | None = None
    """The final answer; None while running or if interrupted."""
    status: Status | Literal["running", "interrupted"] = "running"
    """How the node ended."""
    started: float = 0.0
    """Seconds from the run's start when the node began."""
    ended: float | None = None
    """Seconds from the run's start when the node finished."""
    cycle_of: int | None = None
    """The ancestor with the same question, if this node repeats one."""
    limit: str | None = None
    """The limit hit at this node, if any (e.g. `max_steps_per_node`, `node_timeout`)."""
    error: str | None = None
    """What failed, for a node that ended in error."""
    oracle: bool = False
    """True when the task's environment answered this primitive question (facts hidden): no policy call."""


class CallNode(BaseModel):
    """One policy call: the workspace the policy saw and what it did."""

    model_config = ConfigDict(extra="allow")

    id: int
    kind: Literal["call"]
    workspace: int
    """Id of the workspace node that made the call."""
    policy: str
    """Fingerprint of the policy called."""
    input: dict[str, Any]
    """The workspace shown to the policy (without the run's shared context)."""
    output: dict[str, Any] | None = None
    """The action returned; None if the call failed."""
    usage: Usage = Field(default_factory=Usage)
    """Tokens and money the call reported."""
    latency: float = 0.0
    """Seconds the call took (0 for a cache hit)."""
    cached: bool = False
    """True when served from the policy-call cache instead of calling the policy."""
    started: float = 0.0
    """Seconds from the run's start when the call began."""
    raw: dict[str, Any] | None = None
    """Policy-specific record (e.g. request messages and raw response)."""
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    """Each attempt made, for policies that retry."""
    error: str | None = None
    """What failed, for a call that raised."""
    error_traceback: str | None = None
    """The formatted traceback of an exception a policy raised (a bug, not a `PolicyError`)."""
    invocations: int = 1
    """Base-policy invocations behind this call (a vote of k copies: k); what cost figures count."""
    original_latency: float | None = None
    """For a cache hit: seconds the call took when it was made (None if unknown or not a cache hit)."""


class EdgeRecord(BaseModel):
    """A delegation, a cache reuse, or a workspace's policy call."""

    model_config = ConfigDict(extra="allow")

    source: int
    target: int
    kind: Literal["delegate", "reuse", "call"]
    step: int | None = None
    """For delegate/reuse edges: the parent's step that asked."""
    order: int | None = None
    """For delegate/reuse edges: the position of the subquestion within its step."""
    repeats: int = 0
    """How many more times the same parent asked the same child."""


class TraceFile(BaseModel):
    """A whole trace as written to disk: networkx node-link data plus a format header."""

    format: Literal["hch-trace"]
    """Always `hch-trace`; tells a trace from any other JSON."""
    schema_version: int
    """Bumped on every incompatible change to this schema."""
    directed: bool = True
    multigraph: bool = False
    graph: dict[str, Any]
    """Run metadata: question, depth, policy, limits, summary, versions; in pointer mode also `messages`
    (message id -> content, nested pointers written `$m<id>`)."""
    nodes: list[Annotated[WorkspaceNode | CallNode, Field(discriminator="kind")]]
    edges: list[EdgeRecord]


# Loading validates against the models above, mirrored as TypedDicts: pydantic then checks the
# same types but returns plain dicts, ~10x faster than building (and dumping) a model per node.
# tests/test_trace_format.py keeps the mirror's fields equal to the models'.


@with_config(ConfigDict(extra="allow"))
class _WorkspaceDict(TypedDict):
    id: int
    kind: Literal["workspace"]
    question: str
    depth: int
    policy: str
    answer: NotRequired[str | None]
    status: NotRequired[Status | Literal["running", "interrupted"]]
    started: NotRequired[float]
    ended: NotRequired[float | None]
    cycle_of: NotRequired[int | None]
    limit: NotRequired[str | None]
    error: NotRequired[str | None]
    oracle: NotRequired[bool]


@with_config(ConfigDict(extra="ignore"))
class _UsageDict(TypedDict):
    prompt_tokens: NotRequired[int]
    completion_tokens: NotRequired[int]
    cached_tokens: NotRequired[int]
    cost: NotRequired[float]


@with_config(ConfigDict(extra="allow"))
class _CallDict(TypedDict):
    id: int
    kind: Literal["call"]
    workspace: int
    policy: str
    input: dict[str, Any]
    output: NotRequired[dict[str, Any] | None]
    usage: NotRequired[_UsageDict]
    latency: NotRequired[float]
    cached: NotRequired[bool]
    started: NotRequired[float]
    raw: NotRequired[dict[str, Any] | None]
    attempts: NotRequired[list[dict[str, Any]]]
    error: NotRequired[str | None]
    error_traceback: NotRequired[str | None]
    invocations: NotRequired[int]
    original_latency: NotRequired[float | None]


@with_config(ConfigDict(extra="allow"))
class _EdgeDict(TypedDict):
    source: int
    target: int
    kind: Literal["delegate", "reuse", "call"]
    step: NotRequired[int | None]
    order: NotRequired[int | None]
    repeats: NotRequired[int]


class _FileDict(TypedDict):
    format: Literal["hch-trace"]
    schema_version: int
    directed: NotRequired[bool]
    multigraph: NotRequired[bool]
    graph: dict[str, Any]
    nodes: list[Annotated[_WorkspaceDict | _CallDict, Field(discriminator="kind")]]
    edges: list[_EdgeDict]


_FILE = TypeAdapter(_FileDict)
MIRRORS: dict[type[BaseModel], type] = {
    WorkspaceNode: _WorkspaceDict, CallNode: _CallDict, EdgeRecord: _EdgeDict, Usage: _UsageDict,
    TraceFile: _FileDict,
}
"""Each file model and the TypedDict that validates it on load."""


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields in order, with their defaults (None for a required field, always given)."""
    return {
        name: None if field.is_required() or field.default_factory is not None else field.default
        for name, field in model.model_fields.items()
        if name != "id"
    }


_NODE_DEFAULTS = {"workspace": _defaults(WorkspaceNode), "call": _defaults(CallNode)}
_USAGE_DEFAULTS = Usage().model_dump()
_EDGE_DEFAULTS = {name: field.default for name, field in EdgeRecord.model_fields.items() if not field.is_required()}


def to_data(trace: Trace) -> dict[str, Any]:
    """The trace as plain JSON-ready data in the file format."""
    data = nx.node_link_data(trace.graph, edges="edges")
    for node in data["nodes"]:
        usage = node.get("usage")
        if isinstance(usage, Usage):
            node["usage"] = usage.model_dump()
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, **data}


def save(trace: Trace, path: str | Path) -> Path:
    """Write the trace atomically: a temporary file beside `path`, then a rename (see `hch.files`).

    The file gets the permissions a plain `open(path, "w")` would give it (see `hch.record.claim`).
    """
    path = Path(path)
    with atomic_file(path, sync=False) as file, _no_gc():
        write_json(trace, file)
    return path


def load(path: str | Path) -> Trace:
    """Read a trace file; any problem is a one-line `TraceError`."""
    path = Path(path)
    text = read_text(path, "trace file", TraceError)
    with _no_gc():
        return parse(text, source=str(path))


def parse(text: str, source: str = "<text>") -> Trace:
    """Validate trace JSON text and build its graph."""
    try:
        raw = pydantic_core.from_json(text)  # json.loads' result, twice as fast
    except ValueError:
        raw = None
    try:
        if raw is None:
            raw = load_json(text)  # for its precise error message (or what from_json refused)
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at line {exc.lineno}"
        raise TraceError(f"{source} is not valid JSON (truncated or corrupt?): {reason}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise TraceError(f"{source} is not an hch trace (no \"format\": \"{FORMAT}\" header)")
    version = raw.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise TraceError(
            f"{source} was written by a newer hch (trace schema version {version}; this hch reads versions"
            f" 1 to {SCHEMA_VERSION}): upgrade hch to read it"
        )
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TraceError(
            f"{source} has trace schema version {version!r}; this hch reads versions 1 to {SCHEMA_VERSION}"
        )
    try:
        data = _FILE.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise TraceError(f"{source} is not a valid hch trace: {where}: {first['msg']}") from None
    problem = structure_problem(data)
    if problem is not None:
        raise TraceError(f"{source} is not a valid hch trace: {problem}")
    return from_data(data)


def structure_problem(data: Any) -> str | None:
    """What makes validated file data not a run's graph, or None. Linear in nodes and edges.

    There is a root (the first workspace, asked by none); node ids are unique; every edge joins
    recorded nodes; delegate and reuse edges join workspaces and form no cycle (HCH's delegations
    are a tree, or a DAG where subtrees are reused); every call has a call edge from a workspace,
    the one its `workspace` names (calls copied from another run by earlier versions kept the id they
    had there, so for `grafted` calls only the edge counts).
    """
    kinds: dict[int, str] = {}
    owner: dict[int, int] = {}
    for node in data["nodes"]:
        if node["id"] in kinds:
            return f"node id {node['id']} is used twice"
        kinds[node["id"]] = node["kind"]
        if node["kind"] == "call" and not node.get("grafted"):
            owner[node["id"]] = node["workspace"]
    for call, workspace in owner.items():
        if kinds.get(workspace) != "workspace":
            return f"call {call} belongs to workspace {workspace}, which is not a workspace of the trace"
    below: dict[int, list[int]] = {}
    called: set[int] = set()
    joined: set[tuple[int, int]] = set()
    delegated: dict[int, int] = {}
    backward = False  # only a reuse edge may point to an older workspace; without one no cycle is possible
    for edge in data["edges"]:
        source, target, kind = edge["source"], edge["target"], edge["kind"]
        if source not in kinds or target not in kinds:
            return f"a {kind} edge joins {source} to {target}, which is not a node of the trace"
        if kind == "call":
            if kinds[target] != "call" or kinds[source] != "workspace" or owner.get(target, source) != source:
                return f"the call edge {source} -> {target} does not join a call to its own workspace"
            called.add(target)
        elif kinds[source] != "workspace" or kinds[target] != "workspace":
            return f"the {kind} edge {source} -> {target} does not join two workspaces"
        else:
            below.setdefault(source, []).append(target)
            backward = backward or target <= source
        if (source, target) in joined:  # a graph holds one edge per pair: a second would be lost unseen
            return f"the edge {source} -> {target} is recorded twice"
        joined.add((source, target))
        if kind == "delegate" and delegated.setdefault(target, source) != source:  # a tree: one asker each
            return f"workspace {target} is delegated by both {delegated[target]} and {source} (reuse is its own edge)"
    root = min((node for node, kind in kinds.items() if kind == "workspace"), default=None)
    if root is None:
        return "it holds no workspace"
    orphan = next((node for node, kind in kinds.items() if kind == "call" and node not in called), None)
    if orphan is not None:
        return f"call {orphan} has no call edge from a workspace"
    cycle = _on_a_cycle(below) if backward else None
    if cycle is not None:
        return f"the delegation edges form a cycle through workspace {cycle}"
    asker = next((source for source, targets in below.items() if root in targets), None)
    if asker is not None:
        return f"the root workspace {root} (the first recorded) is a subquestion of workspace {asker}"
    return None


def _on_a_cycle(below: dict[int, list[int]]) -> int | None:
    """A node on a cycle of the graph `below` (node -> successors), or None: Kahn's algorithm."""
    incoming: dict[int, int] = dict.fromkeys(below, 0)
    for targets in below.values():
        for target in targets:
            incoming[target] = incoming.get(target, 0) + 1
    ready = [node for node, count in incoming.items() if count == 0]
    while ready:
        node = ready.pop()
        for target in below.get(node, ()):
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    return min((node for node, count in incoming.items() if count > 0), default=None)


def from_data(data: Any) -> Trace:
    """Build the in-memory trace from validated file data: what `from_model` builds, without models."""
    graph: nx.DiGraph[int] = nx.DiGraph(**data["graph"])
    for node in data["nodes"]:
        attrs = {**_NODE_DEFAULTS[node["kind"]], **node}
        del attrs["id"]
        if attrs["kind"] == "call":
            attrs["usage"] = {**_USAGE_DEFAULTS, **(node.get("usage") or {})}
            if "attempts" not in node:
                attrs["attempts"] = []
        graph.add_node(node["id"], **attrs)
    for edge in data["edges"]:
        source, target = edge.pop("source"), edge.pop("target")
        for key, default in _EDGE_DEFAULTS.items():  # as in the file model's exclude_defaults
            if key in edge and edge[key] == default:
                del edge[key]
        graph.add_edge(source, target, **edge)
    return Trace(graph)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a trace's objects are built.

    Nothing built here is garbage yet, but each collection would walk them all again: for a
    large trace the collector costs as much as the parsing. Collection resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def from_model(model: TraceFile) -> Trace:
    """Build the in-memory trace from a validated file model."""
    graph: nx.DiGraph[int] = nx.DiGraph(**model.graph)
    for node in model.nodes:
        attrs = node.model_dump(exclude={"id"})
        graph.add_node(node.id, **attrs)
    for edge in model.edges:
        attrs = edge.model_dump(exclude={"source", "target"}, exclude_defaults=True)
        graph.add_edge(edge.source, edge.target, **attrs)
    return Trace(graph)


def write_json(trace: Trace, file: BinaryIO) -> None:
    """Write the bytes of `to_data(trace)` as compact JSON, a chunk of nodes or edges at a time.

    Serializing the whole trace at once would hold a copy of every node and the whole text in
    memory at the end of a run; chunks keep that to a few thousand records.
    """
    graph = trace.graph
    head = _to_json({
        "format": FORMAT, "schema_version": SCHEMA_VERSION,
        "directed": graph.is_directed(), "multigraph": graph.is_multigraph(), "graph": graph.graph,
    })
    file.write(head[:-1] + b',"nodes":')
    _write_list(file, ({**attrs, "id": node} for node, attrs in graph.nodes(data=True)))
    file.write(b',"edges":')
    _write_list(file, ({**data, "source": u, "target": v} for u, v, data in graph.edges(data=True)))
    file.write(b"}")


def _write_list(file: BinaryIO, records: Iterator[dict[str, Any]], chunk: int = 2048) -> None:
    file.write(b"[")
    first = True
    while batch := list(itertools.islice(records, chunk)):
        file.write((b"" if first else b",") + _to_json(batch)[1:-1])
        first = False
    file.write(b"]")


def _to_json(data: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    """Compact UTF-8 JSON, serialized by pydantic-core (2-3x faster than the json module)."""
    try:
        return pydantic_core.to_json(data, fallback=_jsonable)
    except pydantic_core.PydanticSerializationError as exc:
        if "UnicodeEncodeError" not in str(exc):
            raise TypeError(str(exc).removeprefix("Error serializing to JSON: TypeError: ")) from None
    # Text that is not valid Unicode (a lone surrogate from a policy): the json module writes it
    # as a \u escape, which loads back as the same string, so the trace is still written.
    return _ASCII.encode(data).encode("ascii")


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot write {type(value).__name__} to a trace")


_ASCII = json.JSONEncoder(separators=(",", ":"), default=_jsonable)
