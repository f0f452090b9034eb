"""The trace file: versioned node-link JSON validated by pydantic, saved atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hch.errors import TraceError
from hch.trace import Trace
from hch.workspace import Status, Usage

FORMAT = "hch-trace"
SCHEMA_VERSION = 1


class WorkspaceNode(BaseModel):
    """One node of HCH: a question at a depth, and how it was answered."""

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
    """Run metadata: question, depth, policy, limits, summary, versions."""
    nodes: list[Annotated[WorkspaceNode | CallNode, Field(discriminator="kind")]]
    edges: list[EdgeRecord]


def to_data(trace: Trace) -> dict[str, Any]:
    """The trace as plain JSON-ready data in the file format."""
    data = nx.node_link_data(trace.graph, edges="edges")
    for node in data["nodes"]:
        usage = node.get("usage")
        if isinstance(usage, Usage):
            node["usage"] = usage.model_dump()
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, **data}


def save(trace: Trace, path: str | Path) -> Path:
    """Write the trace atomically: a temporary file beside `path`, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_data(trace), default=_jsonable, separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | Path) -> Trace:
    """Read a trace file; any problem is a one-line `TraceError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(f"no trace file at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read trace file {path}: {exc}") from None
    return parse(text, source=str(path))


def parse(text: str, source: str = "<text>") -> Trace:
    """Validate trace JSON text and build its graph."""
    try:
        raw = json.loads(text)
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
        model = TraceFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise TraceError(f"{source} is not a valid hch trace: {where}: {first['msg']}") from None
    return from_model(model)


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot write {type(value).__name__} to a trace")
