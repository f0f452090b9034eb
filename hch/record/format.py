"""The trace file: a stream of JSON records (schema 2) or node-link JSON (schema 1), validated by pydantic.

Schema 2, what runs write: one JSON record per line. A header line (`format`, `schema_version`,
the run's `meta` as it started), then `{"node": {...}}` and `{"edge": {...}}` records in the order
things happened (the last record of a node wins; a call's `call` edge is implied by its `workspace`),
then an `{"end": {...}}` record with the run's final metadata (summary, status, answer). A run writes
it as it goes (see `hch.record.journal`): the file it appends to while running becomes the trace by
one atomic rename once the end record is written, so nothing is written twice. Without an end record
the run is `unfinished` (killed, or still going).

Schema 1, node-link JSON (networkx's `node_link_data` layout plus a header): what earlier versions
wrote and what `hch export --format json` writes for other tools; read as before.
"""

from __future__ import annotations

import gc
import itertools
import json
import operator
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Literal, NotRequired, TypeVar, cast

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from hch.errors import TraceError
from hch.files import atomic_file, read_bytes, utf8_text
from hch.record.lazy_record import LazyCall, LazyRecord, LazyWorkspace
from hch.record.trace import Trace
from hch.validate import load_json
from hch.workspace import Status, Usage

if TYPE_CHECKING:
    import networkx as nx

FORMAT = "hch-trace"
SCHEMA_VERSION = 2
"""The newest schema this hch reads, and the one runs write (records, one per line)."""
NODE_LINK_VERSION = 1
"""The schema of node-link JSON (one document): still read, and written by `hch export --format json`."""


class WorkspaceNode(BaseModel):
    """One node of HCH: a question at a depth, and how it was answered.

    Runs with `copies="independent"` also record `copy` (a string): the node's copy id, as in
    `Workspace.copy`; merged runs leave it out (so their traces are as before).

    Runs in pointer mode (`hch.run.pointers`; other runs leave both out) also record `pointers`, the
    node's view names to the run's pointers (`{"$1": "$m<id>", ...}`), and `expansions`, the pointers
    H expanded there in order (`[{"pointer": "$1", "message": "$m<id>", "step": 0}, ...]`, `step` being
    the steps of asking before it). Their `question` and `answer` then hold run pointers `$m<id>`,
    whose contents are in the run metadata's `messages`.
    Budgeted runs (budgeted HCH, `answer(budget=N)`; the run's `budget` is in the metadata) also record
    `budget` (an int): the policy calls this node and its subtree were given, and `spent` (an int): how
    many of them they used (0 for the environment's answers; a reused subtree keeps what it spent when
    computed). Runs without a budget leave both out.
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
    """A delegation, a cache reuse, or a workspace's policy call.

    In budgeted runs, delegate and reuse edges also record `budget` (an int): the policy calls the asker
    gave the subquestion, and `returned` (an int): what the subtree did not spend, back to the asker
    (`budget - returned` is the child's `spent`; an unfinished run's journal may lack `returned` on an
    edge whose subtree was still running). Runs without a budget leave both out.
    """

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


_NODES = TypeAdapter(list[Annotated[_WorkspaceDict | _CallDict, Field(discriminator="kind")]])
_EDGES = TypeAdapter(list[_EdgeDict])
_HEAD = (b'{"format":"hch-trace"', b'{"format":"hch-journal"')
JOURNAL_FORMAT = "hch-journal"
"""The header of journals written by hch before schema 2 (same records as a schema-2 trace); still read."""


def to_data(trace: Trace) -> dict[str, Any]:
    """The trace as plain JSON-ready data in the node-link layout (schema 1; what `hch export` writes)."""
    import networkx  # only for export: reading a trace does not need it

    graph = trace.graph
    data = networkx.node_link_data(graph, edges="edges")
    for node in data["nodes"]:
        usage = node.get("usage")
        if isinstance(usage, Usage):
            node["usage"] = usage.model_dump()
    return {"format": FORMAT, "schema_version": NODE_LINK_VERSION, **data}


def save(trace: Trace, path: str | Path) -> Path:
    """Write the trace atomically in the record layout (schema 2): a temporary file beside `path`,
    then a rename (see `hch.files`). Runs do not call this: their trace file is written as they go.

    The file gets the permissions a plain `open(path, "w")` would give it (see `hch.record.claim`).
    """
    path = Path(path)
    with atomic_file(path, sync=False) as file, no_gc():
        write_records(trace, file)
    return path


def write_records(trace: Trace, file: BinaryIO, chunk: int = 4096) -> None:
    """The whole trace as schema-2 records: header, nodes, edges (call edges implied), end."""
    file.write(header_line(trace.meta))
    batch: list[bytes] = []
    for node, attrs in trace.nodes.items():
        batch.append(node_line(node, attrs))
        if len(batch) >= chunk:
            file.write(b"".join(batch))
            batch.clear()
    nodes = trace.nodes
    for source, target, data in trace.edges():
        if data["kind"] != "call" or nodes[target].get("workspace") != source:  # else implied
            batch.append(edge_line(source, target, data))
            if len(batch) >= chunk:
                file.write(b"".join(batch))
                batch.clear()
    batch.append(end_line(trace.meta))
    file.write(b"".join(batch))


def header_line(meta: dict[str, Any], trace_name: str | None = None) -> bytes:
    """The first line of a schema-2 trace: format, version, and the run's metadata as it started."""
    head: dict[str, Any] = {"format": FORMAT, "schema_version": SCHEMA_VERSION}
    if trace_name is not None:
        head["trace"] = trace_name  # the file this journal becomes (`x` and `x.json` share a journal name)
    head["meta"] = meta
    return _record(head)


def node_line(node: int, attrs: dict[str, Any]) -> bytes:
    """`{"node": {"id": node, ...attrs}}` and a newline, without copying `attrs`."""
    if isinstance(attrs, LazyRecord):
        attrs.load()  # pydantic-core reads the dict itself, not through its methods
    body = _record(attrs)
    return b'{"node":{"id":' + str(node).encode() + (b"," if len(body) > 3 else b"") + body[1:-1] + b"}\n"


def edge_line(source: int, target: int, attrs: dict[str, Any]) -> bytes:
    """`{"edge": {"source": source, "target": target, ...attrs}}` and a newline."""
    body = _record(attrs)
    return (b'{"edge":{"source":' + str(source).encode() + b',"target":' + str(target).encode()
            + (b"," if len(body) > 3 else b"") + body[1:-1] + b"}\n")


def end_line(meta: dict[str, Any]) -> bytes:
    """The last line of a finished trace: the run's final metadata."""
    return _record({"end": meta})


def _record(data: dict[str, Any]) -> bytes:
    """One record as compact JSON and a newline (JSON never holds a raw newline, so one per line)."""
    return _to_json(data) + b"\n"


def load(path: str | Path, calls: bool = True) -> Trace:
    """Read a trace file (either schema); any problem is a one-line `TraceError`. Without `calls`, the
    policy calls may be left out (see `parse_lazily`)."""
    path = Path(path)
    data = read_bytes(path, "trace file", TraceError)
    with no_gc(kept=True):
        return load_bytes(data, path, "trace file", calls=calls)


def read_all(trace: Trace) -> Trace:
    """`trace` with every record a load kept as its line parsed and validated now: for a caller that
    handles a bad trace where it loads it (a bad record is then a `TraceError` here, not where it is
    first read)."""
    for data in trace.nodes.values():
        if isinstance(data, LazyRecord):
            data.load()
    return trace


def load_bytes(data: bytes, path: Path, what: str, journal: bool = False, calls: bool = True) -> Trace:
    """A trace (or, with `journal`, a journal) from the bytes of the file at `path`: the fast path
    (`parse_lazily`) when it applies, else `parse` or `parse_records` of the text."""
    if not data.isascii():
        utf8_text(data, path, what, TraceError)  # one error line, as for any file hch reads
    trace = parse_lazily(data, str(path), journal, calls)
    if trace is not None:
        return trace
    text = utf8_text(data, path, what, TraceError)
    del data
    if journal:
        head = json.loads(text.partition("\n")[0])
        return parse_records(head, text, str(path), journal=True)
    return parse(text, source=str(path))


def parse(text: str, source: str = "<text>") -> Trace:
    """Validate trace text (records, or node-link JSON) and build the trace."""
    if text[:64].lstrip(" ").encode().startswith(_HEAD) and "\n" in text[:1 << 20]:
        first, _, _ = text.partition("\n")
        head = _json(first, source)
        if isinstance(head, dict) and "meta" in head and "nodes" not in head:
            return parse_records(head, text, source)
    raw = _json(text, source)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise TraceError(f"{source} is not an hch trace (no \"format\": \"{FORMAT}\" header)")
    _check_version(raw.get("schema_version"), source)
    try:
        data = _FILE.validate_python(raw)
    except ValidationError as exc:
        raise TraceError(f"{source} is not a valid hch trace: {_first_error(exc)}") from None
    problem = structure_problem(data)
    if problem is not None:
        raise TraceError(f"{source} is not a valid hch trace: {problem}")
    return from_data(data)


def _json(text: str, source: str) -> Any:
    try:
        return pydantic_core.from_json(text)  # json.loads' result, twice as fast
    except ValueError:
        pass
    try:
        return load_json(text)  # for its precise error message (or what from_json refused)
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at line {exc.lineno}"
        raise TraceError(f"{source} is not valid JSON (truncated or corrupt?): {reason}") from None


def _check_version(version: Any, source: str, newest: int = SCHEMA_VERSION) -> None:
    if isinstance(version, int) and not isinstance(version, bool) and version > newest:
        raise TraceError(
            f"{source} was written by a newer hch (trace schema version {version}; this hch reads versions"
            f" 1 to {newest}): upgrade hch to read it"
        )
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TraceError(
            f"{source} has trace schema version {version!r}; this hch reads versions 1 to {newest}"
        )


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return ".".join(str(part) for part in first["loc"]) + ": " + first["msg"]


def parse_records(head: dict[str, Any], text: str, source: str, journal: bool = False) -> Trace:
    """A schema-2 trace (or a journal) from its text, `head` its parsed first line.

    A trace file ends with its end record (a run renames its journal to the trace only after writing
    it), so one without is truncated: an error. A `journal` may lack it (the run was killed, or still
    goes): the run's status is then `unfinished` and a last line cut short is ignored. A bad line
    elsewhere is an error.
    """
    if head.get("format") == JOURNAL_FORMAT:
        _check_version(head.get("schema_version"), source, newest=1)
    elif head.get("format") == FORMAT:
        _check_version(head.get("schema_version"), source)
    else:
        raise TraceError(f"{source} is not an hch trace (no \"format\": \"{FORMAT}\" header)")
    records = _records(text, source, journal)
    nodes: dict[int, dict[str, Any]] = {}
    edges: dict[tuple[int, int], dict[str, Any]] = {}
    end: dict[str, Any] | None = None
    for number, record in enumerate(records, start=2):
        try:
            if "node" in record:
                nodes[record["node"]["id"]] = record["node"]
            elif "edge" in record:
                edge = record["edge"]
                edges[edge["source"], edge["target"]] = edge
            elif isinstance(record.get("end"), dict):
                end = record["end"]
            else:
                raise KeyError(number)
        except (KeyError, TypeError, ValueError):
            raise TraceError(f"{source} line {number} is not a trace record") from None
    try:
        node_list = _NODES.validate_python(list(nodes.values()))
        edge_list = _EDGES.validate_python(list(edges.values()))
    except ValidationError as exc:
        raise TraceError(f"{source} is not a valid hch trace: {_first_error(exc)}") from None
    called = {edge["target"] for edge in edge_list if edge["kind"] == "call"}
    for node in node_list:  # a call's edge from its workspace is implied, unless written
        if node["kind"] == "call" and node["id"] not in called:
            edge_list.append({"source": node["workspace"], "target": node["id"], "kind": "call"})
    meta = _run_meta(head, end, journal, bool(node_list), source)
    data = {"graph": meta, "nodes": node_list, "edges": edge_list}
    problem = structure_problem(data)
    if problem is not None:
        raise TraceError(f"{source} is not a valid hch trace: {problem}")
    return from_data(data)

_INT = rb'(?:0|[1-9][0-9]{0,17})'
"""A JSON integer as runs write it (no sign, no leading zero) small enough for 64 bits: what the lazy pattern takes."""
_KINDS = {b"call": "call", b"delegate": "delegate", b"reuse": "reuse"}
_T = TypeVar("_T")


def _line_heads(keep_calls: bool) -> re.Pattern[bytes]:
    """The lines `parse_lazily` takes without parsing JSON, in the key order runs write them: a call's line
    (id and workspace first, kind last: nothing after it), a workspace's (id, question and depth first, kind
    last), and an edge's with nothing but its ends, step and order, and kind. Any other line is parsed.
    Without `keep_calls`, the lines of calls and of plain call edges are matched but not kept (no group)."""
    call = rb'"workspace":(?P<workspace>' + _INT + rb'),[^\n]*,"kind":"call"'
    workspace = rb'"question":"(?:[^"\\\n]++|\\.)*+","depth":(?P<depth>' + _INT + rb'),[^\n]*,"kind":"workspace"'
    kinds = call + rb'|' + workspace if keep_calls else workspace
    node = rb'(?P<line>\{"node":\{"id":(?P<id>' + _INT + rb'),(?:' + kinds + rb')\}\})'
    ends = rb'\{"edge":\{"source":(?P<source>' + _INT + rb'),"target":(?P<target>' + _INT + rb'),'
    edge = ends + rb'(?:"step":(?P<step>' + _INT + rb'),"order":(?P<order>' + _INT + rb'),)?"kind":"(?P<kind>'
    if keep_calls:
        return re.compile(rb'\n(?:' + node + rb'|' + edge + rb'call|delegate|reuse)"\}\})(?=\n)')
    skipped = (rb'\{"node":\{"id":' + _INT + rb',"workspace":' + _INT + rb',[^\n]*,"kind":"call"\}\}'
               rb'|\{"edge":\{"source":' + _INT + rb',"target":' + _INT + rb',"kind":"call"\}\}')
    return re.compile(rb'\n(?:' + skipped + rb'|' + node + rb'|' + edge + rb'delegate|reuse)"\}\})(?=\n)')


_LAZY, _LAZY_NO_CALLS = _line_heads(True), _line_heads(False)
_CALL = TypeAdapter(_CallDict)
_WORKSPACE = TypeAdapter(_WorkspaceDict)


def parse_lazily(data: bytes, source: str, journal: bool = False, calls: bool = True) -> Trace | None:
    """A schema-2 trace (or journal) from its bytes, each call and workspace kept as its line until read
    (see `hch.record.lazy_record`), or None when the fast path does not apply: another layout, a bad or
    cut line, or anything unusual (then `parse` or `parse_records` reads it, with their errors). Edges
    as runs write them are taken from the same pass; every other record is read and validated as
    `parse_records` does, and the structure checked with the nodes' ids, kinds and calls' workspaces, a
    whole column at a time (strictly: a call copied by an earlier hch that kept another run's workspace,
    `grafted`, sends the file to the slow path, which allows it). Without `calls`, the lines of calls (and
    of their edges) are skipped: a trace of the workspaces and their edges, for a view that takes the
    calls' figures from the run's recorded summary (`hch show` of a large trace).
    """
    start = data[:64].lstrip(b" ")
    newline = data.find(b"\n")
    if not start.startswith(_HEAD[0]) or newline < 0:
        return None
    try:
        head = pydantic_core.from_json(data[:newline])
    except ValueError:
        return None
    if not isinstance(head, dict) or "meta" not in head or "nodes" in head:
        return None
    _check_version(head.get("schema_version"), source)
    pattern = _LAZY if calls else _LAZY_NO_CALLS
    parts = pattern.split(data)
    del data
    taken = _Taken(parts, pattern)
    del parts
    records = _parsed_records(taken.between, newline)
    if records is None:
        return None
    return _columns_trace(head, records, taken, source, journal)


def _parsed_records(chunks: list[bytes], header_end: int) -> list[Any] | None:
    """The lines the lazy pattern left, parsed as one JSON list (the header blanked); None if a line is
    not one JSON value."""
    joined = bytearray().join(filter(None, chunks))  # most are empty: between two taken lines
    count = joined.count(b"\n") - joined.endswith(b"\n")  # one record a line (the header's has none here)
    body = joined.replace(b"\n", b",")  # a JSON list once bracketed
    del joined
    body[:header_end + 1] = b" " * header_end + b"["  # the header (already read), blanked in place
    if body.endswith(b","):
        body[-1:] = b"]"
    else:
        body.append(ord("]"))
    try:
        records: list[Any] = pydantic_core.from_json(body)
    except ValueError:
        return None  # a cut or bad line (or a blank one): the slow path finds it, line by line
    return records if len(records) == count else None


class _Numbers(dict[bytes, int]):
    """JSON integers by their digits: the small ones looked up (several times faster than `int`), any other
    parsed."""

    def __missing__(self, digits: bytes) -> int:
        return int(digits)


_NUMBER = _Numbers((str(number).encode(), number) for number in range(1024))


class _Taken:
    """What the lazy pattern took out of a file, as columns in the file's order: each node line's id and
    line, and whether it is a call's (else a workspace's; a workspace's every line, the last one wins); each
    call's workspace; each workspace line's depth; each edge's ends and attributes (as validation would make
    them). `between` holds the text before each taken line (the lines parsed as JSON), and `edge_at` where
    each edge is among the pattern's matches."""

    def __init__(self, parts: list[Any], pattern: re.Pattern[bytes]) -> None:
        step, where = pattern.groups + 1, pattern.groupindex
        matches = len(parts) // step

        def column(name: str) -> list[Any]:
            return parts[where[name]::step] if name in where else [None] * matches

        lines, owners = column("line"), column("workspace")
        self.lines = list(filter(None, lines))
        self.ids = list(map(int, filter(None, column("id"))))
        self.is_call = list(map(operator.truth, itertools.compress(owners, lines)))
        self.call_ids = list(itertools.compress(self.ids, self.is_call))
        self.workspace_ids = list(itertools.compress(self.ids, map(operator.not_, self.is_call)))
        self.owners = list(map(int, filter(None, owners)))
        number = _NUMBER.__getitem__
        self.depths = list(map(number, filter(None, column("depth"))))
        self.edge_at = column("source")
        self.pairs = list(zip(map(int, filter(None, self.edge_at)), map(int, filter(None, column("target"))),
                              strict=True))
        kinds = list(map(_KINDS.__getitem__, filter(None, column("kind"))))
        ordered = list(map(operator.truth, itertools.compress(column("step"), self.edge_at)))  # with step and order
        steps, orders = map(number, filter(None, column("step"))), map(number, filter(None, column("order")))
        plain = [{"kind": kind} for kind in itertools.compress(kinds, map(operator.not_, ordered))]
        asks = [{"kind": kind, "step": at, "order": order}
                for kind, at, order in zip(itertools.compress(kinds, ordered), steps, orders, strict=True)]
        self.edges: list[dict[str, Any]] = list(_interleaved(ordered, plain, asks))
        self.between = parts[0::step]

    def edge_ranks(self) -> list[int]:
        """Each taken edge's place among all records, for merging it with parsed ones: 2n when n parsed
        records come before it (a parsed record n is at 2n + 1)."""
        before = itertools.accumulate(map(bytes.count, self.between, itertools.repeat(b"\n")))
        return [2 * n for n in itertools.compress(before, map(_is_not_none, self.edge_at))]


def _interleaved(which: Iterable[bool], no: Iterable[_T], yes: Iterable[_T]) -> Iterator[_T]:
    """The items of `yes` where `which` is true and those of `no` where it is false, each in its order
    (without a Python call per item)."""
    pick = cast(Callable[[bool], Iterator[_T]], [iter(no), iter(yes)].__getitem__)
    return map(next, map(pick, which))


def _is_not_none(value: Any) -> bool:
    return value is not None


def _columns_trace(head: dict[str, Any], records: list[Any], taken: _Taken, source: str,
                   journal: bool) -> Trace | None:
    """The trace of `parse_lazily`'s parsed records and the lines it took, or None for the slow path."""
    try:
        node_records = [record["node"] for record in records if "node" in record]
        edge_records = [record["edge"] for record in records if "edge" in record]
        edge_at = [number for number, record in enumerate(records) if "edge" in record]
        ends = [record["end"] for record in records if "end" in record]
        latest = {node["id"]: node for node in node_records}  # a node's last record wins
    except (KeyError, TypeError):
        return None
    if len(node_records) + len(edge_records) + len(ends) != len(records) or not all(map(_is_dict, ends)):
        return None
    del records, node_records
    try:
        eager = cast(list[dict[str, Any]], _NODES.validate_python(list(latest.values())))
        written = cast(list[dict[str, Any]], _EDGES.validate_python(edge_records))
    except ValidationError as exc:
        raise TraceError(f"{source} is not a valid hch trace: {_first_error(exc)}") from None
    del latest, edge_records
    meta = _run_meta(head, ends[-1] if ends else None, journal,
                     bool(eager or taken.call_ids or taken.workspace_ids), source)
    nodes = _nodes_in_id_order(eager, taken, source)
    if nodes is None:
        return None  # an id used twice
    columns = _Columns.of(eager, taken, _edges_in_file_order(taken, written, edge_at))
    if not columns.sound():
        return None  # the slow path names the problem
    return Trace.of(meta, nodes, columns.successors(), root=min(columns.workspaces))


def _edges_in_file_order(taken: _Taken, written: list[dict[str, Any]],
                         numbers: list[int]) -> dict[tuple[int, int], dict[str, Any]]:
    """Every edge record's attributes by its ends, in the file's order (an edge's last record wins, in the
    place of its first): the edges the pattern took, and the parsed ones (`written`, records `numbers`)."""
    if not written:
        return dict(zip(taken.pairs, taken.edges, strict=True))
    pairs = [(edge.pop("source"), edge.pop("target")) for edge in written]
    for edge in written:
        _drop_defaults(edge)
    ranked = itertools.chain(zip(taken.edge_ranks(), taken.pairs, taken.edges, strict=True),
                             zip([2 * n + 1 for n in numbers], pairs, written, strict=True))
    return {pair: edge for _, pair, edge in sorted(ranked, key=_FIRST)}


def _nodes_in_id_order(eager: list[dict[str, Any]], taken: _Taken, source: str) -> dict[int, dict[str, Any]] | None:
    """Every node's attributes by id, in id order: the parsed ones whole, the taken ones lazy (a workspace's
    last line wins, in the place of its first); None if an id is used twice."""
    parse_call, parse_workspace = _line_parser(source, _CALL, "policy call"), _line_parser(source, _WORKSPACE)
    lines = iter(taken.lines)  # both draw each next line from it: the node of that line, in the file's order
    calls = map(LazyCall, taken.owners, lines, itertools.repeat(parse_call))
    workspaces = map(LazyWorkspace, taken.depths, lines, itertools.repeat(parse_workspace))
    in_file: Iterator[LazyRecord] = _interleaved(taken.is_call, workspaces, calls)
    nodes: dict[int, dict[str, Any]] = dict(zip(taken.ids, in_file, strict=True))
    nodes.update((node["id"], _node_attrs(node)) for node in eager)
    if len(nodes) != len(taken.call_ids) + len(set(taken.workspace_ids)) + len(eager):
        return None
    ids = list(nodes)
    return nodes if ids == sorted(ids) else dict(sorted(nodes.items(), key=_FIRST))  # runs write nodes in id order


def _is_dict(value: Any) -> bool:
    return type(value) is dict


class _Columns:
    """A loaded trace's workspaces, calls and edges as columns, for whole-column structural checks
    (`structure_problem`'s rules; anything they find is left to the slow path, which names it)."""

    def __init__(self, workspaces: set[int], call_ids: list[int], owners: list[int],
                 edges: dict[tuple[int, int], dict[str, Any]]) -> None:
        self.workspaces = workspaces
        self.call_ids, self.owners = call_ids, owners
        """Each call, in id order, and its workspace."""
        self.edges = edges
        kinds = list(map(_KIND, edges.values()))
        tree = list(map(operator.ne, kinds, itertools.repeat("call")))
        self.call_edges = list(itertools.compress(edges, map(operator.not_, tree)))
        self.tree_edges = list(itertools.compress(edges, tree))
        self.tree_kinds = list(itertools.compress(kinds, tree))

    @classmethod
    def of(cls, eager: list[dict[str, Any]], taken: _Taken, edges: dict[tuple[int, int], dict[str, Any]]) -> _Columns:
        workspaces = {node["id"] for node in eager if node["kind"] == "workspace"}
        workspaces.update(taken.workspace_ids)
        call_ids, owners = taken.call_ids, taken.owners
        parsed = [(node["id"], node["workspace"]) for node in eager if node["kind"] == "call"]
        if parsed or call_ids != sorted(call_ids):  # runs write calls in id order
            calls = sorted(itertools.chain(zip(call_ids, owners, strict=True), parsed))
            call_ids, owners = list(map(_FIRST, calls)), list(map(_SECOND, calls))
        return cls(workspaces, call_ids, owners, edges)

    def sound(self) -> bool:
        """Whether `structure_problem` would find nothing wrong."""
        workspaces = self.workspaces
        if not workspaces or not workspaces.issuperset(self.owners):
            return False
        if self.call_edges:  # a call edge from its own workspace
            owner = dict(zip(self.call_ids, self.owners, strict=True))
            if not all(map(operator.eq, map(owner.get, map(_SECOND, self.call_edges)), map(_FIRST, self.call_edges))):
                return False
        askers, asked = list(map(_FIRST, self.tree_edges)), list(map(_SECOND, self.tree_edges))
        if not (workspaces.issuperset(askers) and workspaces.issuperset(asked)) or min(workspaces) in asked:
            return False
        delegated = list(itertools.compress(asked, map(operator.eq, self.tree_kinds, itertools.repeat("delegate"))))
        if len(set(delegated)) != len(delegated):  # one asker each
            return False
        if any(map(operator.le, asked, askers)):  # only then can the delegations form a cycle
            below: dict[int, list[int]] = {}
            for asker, target in zip(askers, asked, strict=True):
                below.setdefault(asker, []).append(target)
            return _on_a_cycle(below) is None
        return True

    def successors(self) -> dict[int, dict[int, dict[str, Any]]]:
        """Each node's successors with the edges' attributes: the edges in the file's order, then the calls'
        edges it only implies, in id order, as the slow path builds them."""
        succ: dict[int, dict[int, dict[str, Any]]] = {}
        below_of = succ.get
        for (source, target), edge in self.edges.items():
            below = below_of(source)
            if below is None:
                succ[source] = {target: edge}
            else:
                below[target] = edge
        implied: Iterable[tuple[int, int]] = zip(self.call_ids, self.owners, strict=True)
        if self.call_edges:  # a call's edge from its workspace is implied, unless written
            joined = set(map(_SECOND, self.call_edges))
            implied = itertools.compress(implied, map(operator.not_, map(joined.__contains__, self.call_ids)))
        for call, workspace in implied:
            below = below_of(workspace)
            if below is None:
                succ[workspace] = {call: {"kind": "call"}}
            else:
                below[call] = {"kind": "call"}
        return succ


_FIRST, _SECOND, _KIND = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter("kind")


def _line_parser(source: str, adapter: TypeAdapter[Any], what: str = "workspace") -> Callable[[bytes], dict[str, Any]]:
    """Parses and validates one node's line for a `LazyRecord` of the trace read from `source`."""

    def parse(line: bytes) -> dict[str, Any]:
        try:
            try:
                record = pydantic_core.from_json(line)
            except ValueError:
                record = json.loads(line)  # what pydantic-core refuses, e.g. a lone surrogate's \u escape
            node = cast(dict[str, Any], adapter.validate_python(record["node"]))
        except (ValueError, KeyError, TypeError) as exc:
            reason = _first_error(exc) if isinstance(exc, ValidationError) else "not valid JSON"
            raise TraceError(f"{source} is not a valid hch trace: a {what}'s record: {reason}") from None
        return _node_attrs(node)

    return parse


def ends(path: str | Path, limit: int = 1 << 24) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The header's metadata and the end record of a schema-2 trace file, reading only its first and
    last lines (at most `limit` bytes each), however large the file: what a summary needs. The end
    record is None for a run that has not finished (or was killed). A file in another layout, or not
    a regular file, is a `TraceError`."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise TraceError(f"cannot read the trace file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TraceError(f"the trace file {path} is not a regular file; give a file")
        with os.fdopen(os.dup(fd), "rb") as file:
            first = file.readline(limit)
            size = info.st_size
            tail = b""
            while size > len(first) and tail.count(b"\n") < 2 and len(tail) < limit:
                step = min(max(len(tail), 1 << 16), size - len(tail) - len(first))
                if step <= 0:
                    break
                file.seek(size - len(tail) - step)
                tail = file.read(step) + tail
    finally:
        os.close(fd)
    head = _json(first.decode("utf-8", "replace"), str(path)) if first.strip() else None
    if not isinstance(head, dict) or head.get("format") != FORMAT or "meta" not in head:
        raise TraceError(f"{path} is not a trace in the record layout (schema {SCHEMA_VERSION})")
    _check_version(head.get("schema_version"), str(path))
    last = tail.rstrip(b"\n").rpartition(b"\n")[2]
    try:
        record = pydantic_core.from_json(last) if last.startswith(b'{"end":') else None
    except ValueError:
        record = None
    end = record.get("end") if isinstance(record, dict) and isinstance(record.get("end"), dict) else None
    return dict(head["meta"]) if isinstance(head["meta"], dict) else {}, end


def _records(text: str, source: str, journal: bool) -> list[dict[str, Any]]:
    """The records after the header line: parsed at once, or line by line to find a bad one."""
    body = text.partition("\n")[2].rstrip("\n").replace("\n", ",")  # one record per line: a JSON list
    try:
        records = pydantic_core.from_json("[" + body + "]")
        if all(isinstance(record, dict) for record in records):
            return records  # type: ignore[no-any-return]
    except ValueError:
        pass  # a cut or bad line (or a blank one): found below, line by line
    del body
    lines = text.split("\n")[1:]
    found: list[dict[str, Any]] = []
    last = max((n for n, line in enumerate(lines) if line.strip()), default=-1)
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = load_json(line)
        except json.JSONDecodeError:
            if journal and number == last and not any("end" in r for r in found):  # a crash's cut write
                break
            raise TraceError(f"{source} line {number + 2} is not valid JSON (truncated or corrupt?)") from None
        if not isinstance(record, dict):
            raise TraceError(f"{source} line {number + 2} is not a trace record")
        found.append(record)
    return found


def _run_meta(head: dict[str, Any], end: dict[str, Any] | None, journal: bool, has_nodes: bool,
              source: str) -> dict[str, Any]:
    """The run's metadata from a record file's header and end record (a journal without one: unfinished);
    a trace file without its end record, or a file with no node, is a one-line `TraceError`."""
    if end is None and not journal:
        raise TraceError(f"{source} is truncated or corrupt: it has no end record (a run writes it last)")
    meta = dict(head.get("meta") or {})
    if end is not None:
        meta.update(end)
    else:
        meta.update(status="unfinished", source="journal")
    if not has_nodes:
        raise TraceError(f"{source} holds no workspace yet: the run died before its first node")
    return meta


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
    return _structure(kinds, owner, ((edge["source"], ((edge["target"], edge),)) for edge in data["edges"]))


Targets = Iterable[tuple[int, Iterable[tuple[int, dict[str, Any]]]]]
"""Edges as (source, [(target, the edge's attributes), ...]) pairs (a source may come more than once)."""


def _structure(kinds: dict[int, str], owner: dict[int, int], edges: Targets) -> str | None:
    """`structure_problem` of the nodes' kinds, the workspace each (not grafted) call belongs to, and the
    edges (each with its `kind`)."""
    for call, workspace in owner.items():
        if kinds.get(workspace) != "workspace":
            return f"call {call} belongs to workspace {workspace}, which is not a workspace of the trace"
    below: dict[int, list[int]] = {}
    called: set[int] = set()
    joined: set[tuple[int, int]] = set()
    delegated: dict[int, int] = {}
    backward = False  # only a reuse edge may point to an older workspace; without one no cycle is possible
    for source, targets in edges:
        for target, edge in targets:
            kind = edge["kind"]
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
                return (f"workspace {target} is delegated by both {delegated[target]} and {source}"
                        " (reuse is its own edge)")
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
    nodes: dict[int, dict[str, Any]] = {node["id"]: _node_attrs(node) for node in data["nodes"]}
    succ: dict[int, dict[int, dict[str, Any]]] = {}
    for edge in data["edges"]:
        source, target = edge.pop("source"), edge.pop("target")
        _drop_defaults(edge)
        below = succ.get(source)
        if below is None:
            below = succ[source] = {}
        below[target] = edge
    return Trace.of(dict(data["graph"]), nodes, succ)


def _node_attrs(node: dict[str, Any]) -> dict[str, Any]:
    """A validated node record's attributes in the trace: every field, defaults filled in, without `id`."""
    attrs = {**_NODE_DEFAULTS[node["kind"]], **node}
    del attrs["id"]
    if attrs["kind"] == "call":
        attrs["usage"] = {**_USAGE_DEFAULTS, **(node.get("usage") or {})}
        if "attempts" not in node:
            attrs["attempts"] = []
    return attrs


def _drop_defaults(edge: dict[str, Any]) -> None:
    """Remove an edge's attributes that hold their default (as in the file model's exclude_defaults)."""
    for key, default in _EDGE_DEFAULTS.items():
        if key in edge and edge[key] == default:
            del edge[key]


@contextmanager
def no_gc(kept: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector while a trace's objects are built.

    Nothing built here is garbage yet, but each collection would walk them all again: for a
    large trace the collector costs as much as the parsing. Collection resumes afterwards.

    With `kept` (a loaded trace, which its caller keeps), what the block built goes straight to the
    collector's oldest generation: the first young collection would otherwise walk all of it, only to
    find it alive (0.1 s for a 10^5-workspace trace's 350k objects). Objects of the caller's still young
    then go there too (garbage among them waits for the next full collection); with an application's own
    `gc.freeze()` in force nothing is moved, so as not to undo it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if kept and gc.get_freeze_count() == 0:
            gc.freeze()  # every tracked object out of the young generations, none walked...
            gc.unfreeze()  # ...and back, into the oldest
    finally:
        if was_enabled:
            gc.enable()


def from_model(model: TraceFile) -> Trace:
    """Build the in-memory trace from a validated file model."""
    import networkx

    graph: nx.DiGraph[int] = networkx.DiGraph(**model.graph)
    for node in model.nodes:
        attrs = node.model_dump(exclude={"id"})
        graph.add_node(node.id, **attrs)
    for edge in model.edges:
        attrs = edge.model_dump(exclude={"source", "target"}, exclude_defaults=True)
        graph.add_edge(edge.source, edge.target, **attrs)
    return Trace(graph)


def write_json(trace: Trace, file: BinaryIO) -> None:
    """Write the bytes of `to_data(trace)` (node-link, schema 1) as compact JSON, a chunk of nodes or edges at a time.

    Serializing the whole trace at once would hold a copy of every node and the whole text in
    memory at the end of a run; chunks keep that to a few thousand records.
    """
    head = _to_json({
        "format": FORMAT, "schema_version": NODE_LINK_VERSION, "directed": True, "multigraph": False,
        "graph": trace.meta,
    })
    file.write(head[:-1] + b',"nodes":')
    _write_list(file, ({**attrs, "id": node} for node, attrs in trace.nodes.items()))
    file.write(b',"edges":')
    _write_list(file, ({**data, "source": u, "target": v} for u, v, data in trace.edges()))
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
