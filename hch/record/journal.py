"""A crash-safe journal of a run: every node and edge change appended as a JSON line.

While a run goes, `Journal` listens to its `Trace` and appends one line per change to
`<trace>.journal.jsonl` beside the trace file (`run.json` → `run.journal.jsonl`). If the
process dies before the final trace is saved (SIGKILL, a crash, a closed
terminal), `load_journal` rebuilds the trace from it: the last record of a node wins.

Durability trade-off: lines are written to Python's buffer and flushed (one `write`
syscall, no fsync) at the end of every event-loop iteration in which something was
recorded, or every `MAX_PENDING` records, not once per line. A record therefore reaches
the operating system before the run awaits anything else (a slow LLM call, a person, a
sleep); a SIGKILL can only lose what the current iteration recorded: nothing a slow call
finished, and at most `MAX_PENDING` records of instant (expert) calls, which a rerun
redoes for free. The OS keeps flushed data across a process crash; a machine crash can
lose what it had not written to disk yet (there is no fsync: it would cost milliseconds).
Measured cost: about 2 µs to serialize a call record (pydantic-core; 7 µs with the json
module), at most 4 records per workspace (benchmarks/bench_overhead.py measures the whole).
After the final trace JSON is written atomically the journal is redundant and deleted.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, BinaryIO

import pydantic_core
from pydantic import BaseModel

from hch.errors import TraceError, read_text
from hch.files import check_writable_target
from hch.record.claim import claim
from hch.record.trace import Trace
from hch.validate import load_json

FORMAT = "hch-journal"
SCHEMA_VERSION = 1
SUFFIX = ".journal.jsonl"
MAX_PENDING = 4096
"""Records held before a write even within one loop iteration (bounds memory and what a crash loses)."""


def for_trace(trace_path: str | Path, trace: Trace) -> Journal:
    """The journal of a run writing `trace_path`, claimed for it (see `hch.record.claim`)."""
    path = Path(trace_path)
    if str(trace_path) == "-":
        raise TraceError("a run's trace cannot go to stdout ('-'): give a file, then `hch export FILE -o -`")
    if path.name.endswith(SUFFIX):
        raise TraceError(
            f"a trace path may not end in {SUFFIX}, the ending of journals: {path} would be its own journal;"
            f" name it {path.name.removesuffix(SUFFIX)}.json"
        )
    return Journal(journal_path(path), trace, trace_name=path.name)


def journal_path(trace_path: str | Path) -> Path:
    """Where the journal of a trace file lives: `run.json` → `run.journal.jsonl`."""
    path = Path(trace_path)
    if str(trace_path) == "-":
        raise TraceError("a run's trace cannot go to stdout ('-'): give a file, then `hch export FILE -o -`")
    if path.name.endswith(SUFFIX):
        return path
    stem = path.name.removesuffix(".json")
    return path.with_name(stem + SUFFIX)


class Journal:
    """A `Trace` listener appending each change as a line of JSON, flushed once per loop iteration.

    Changes wait in memory until the flush at the end of the loop iteration; a node changed
    twice in one iteration (an instant leaf is added and finished at once) is written once.
    """

    def __init__(self, path: str | Path, trace: Trace, trace_name: str | None = None) -> None:
        self.path = Path(path)
        check_writable_target(self.path, "journal", TraceError)  # a FIFO there would block the run
        self._file: BinaryIO | None = claim(self.path)  # refused if a live run holds it
        self._pending: dict[tuple[int, ...], dict[str, Any]] = {}
        self._flush_scheduled = False
        # `trace`: the name of the trace file this journals (`x` and `x.json` share a journal name)
        header = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "trace": trace_name, "meta": trace.meta}
        self._file.write(_line(header))
        for node in sorted(trace.graph.nodes):  # a trace passed in may already hold nodes
            self._pending[(node,)] = {"node": {"id": node, **trace.graph.nodes[node]}}
        for source, target, data in trace.graph.edges(data=True):
            if data.get("kind") != "call":
                self._pending[(source, target)] = {"edge": {"source": source, "target": target, **data}}
        self.flush()

    def __call__(self, event: str, attrs: dict[str, Any]) -> None:
        """Record one change (the `Trace` listener signature)."""
        if event == "node":
            self._pending[(attrs["id"],)] = {"node": attrs}
        elif attrs.get("kind") != "call":  # a call edge is implied by the call node's `workspace`
            self._pending[(attrs["source"], attrs["target"])] = {"edge": attrs}
        else:
            return
        if len(self._pending) >= MAX_PENDING:
            self.flush()
        elif not self._flush_scheduled:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no asyncio loop (sync use, or another backend): write at once
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is pending and hand it to the operating system (one write syscall)."""
        self._flush_scheduled = False
        if self._file is None or self._file.closed:
            return
        if self._pending:
            self._file.write(b"".join([_line(record) for record in self._pending.values()]))
            self._pending.clear()
        self._file.flush()

    def close(self, delete: bool = False) -> None:
        """Flush and close; `delete` removes the file (once the final trace is safely saved)."""
        if self._file is not None:
            self.flush()
            if delete:  # while still holding it: the path cannot be another run's yet
                self.path.unlink(missing_ok=True)
            self._file.close()
            self._file = None
        elif delete:
            self.path.unlink(missing_ok=True)


def load_journal(path: str | Path) -> Trace:
    """Rebuild a trace from a journal; any problem is a one-line `TraceError`.

    Nodes keep their last recorded status (`running` for those the run was in), and the run's
    status is `unfinished`: the process was killed, or is still going. A last line cut short
    by the crash is ignored; a bad line elsewhere is an error.
    """
    from hch.record import format as trace_format

    path = Path(path)
    lines = read_text(path, "journal", TraceError).splitlines()
    records = _records(lines, path)
    header = records[0] if records else {}
    if header.get("format") != FORMAT:
        raise TraceError(f"{path} is not an hch journal (no \"format\": \"{FORMAT}\" header)")
    version = header.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise TraceError(
            f"{path} has journal schema version {version!r}; this hch reads versions 1 to {SCHEMA_VERSION}"
        )
    nodes: dict[int, dict[str, Any]] = {}
    edges: dict[tuple[int, int], dict[str, Any]] = {}
    for number, record in enumerate(records[1:], start=2):
        try:
            if "node" in record:
                nodes[int(record["node"]["id"])] = record["node"]
            else:
                edge = record["edge"]
                edges[int(edge["source"]), int(edge["target"])] = edge
        except (KeyError, TypeError, ValueError):
            raise TraceError(f"{path} line {number} is not a journal record") from None
    for node in nodes.values():
        if node.get("kind") == "call" and isinstance(node.get("workspace"), int):
            edges.setdefault((node["workspace"], node["id"]), {
                "source": node["workspace"], "target": node["id"], "kind": "call"})
    meta = dict(header.get("meta") or {})
    meta.update(status="unfinished", source="journal")
    data = {
        "format": trace_format.FORMAT, "schema_version": trace_format.SCHEMA_VERSION,
        "graph": meta, "nodes": list(nodes.values()), "edges": list(edges.values()),
    }
    if not nodes:
        raise TraceError(f"{path} holds no workspace yet: the run died before its first node")
    # Through the trace file's own parser (public API), so both are validated alike.
    return trace_format.parse(_ENCODER.encode(data), source=str(path))


def _records(lines: list[str], path: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = load_json(line)
        except json.JSONDecodeError:
            if number == len(lines):  # the write the crash interrupted
                break
            raise TraceError(f"{path} line {number} is not valid JSON (corrupt journal?)") from None
        if not isinstance(record, dict):
            raise TraceError(f"{path} line {number} is not a journal record")
        records.append(record)
    return records


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot write {type(value).__name__} to a journal")


# Built once: json.dumps with options builds a new encoder per call. Records hold no cycles.
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False, default=_jsonable)


def _line(record: dict[str, Any]) -> bytes:
    """One record as a line of compact UTF-8 JSON.

    pydantic-core serializes a call record about 4x faster than the json module (the journal's
    main cost per node); text it cannot encode as UTF-8 (a lone surrogate from a policy) falls
    back to the json module, which escapes it, so every record is still written.
    """
    try:
        return pydantic_core.to_json(record, fallback=_jsonable) + b"\n"
    except pydantic_core.PydanticSerializationError:
        return _ENCODER.encode(record).encode() + b"\n"


def load_any(path: str | Path) -> Trace:
    """A trace file, or the journal beside it when that is newer: the trace is missing (the run
    was killed or still goes), or a later run writing to the same path has not finished."""
    from hch.record import format as trace_format

    path = Path(path)
    if not path.name:
        raise TraceError(f"give the path of a trace file, not {str(path)!r}")
    if path.name.endswith(SUFFIX) or _starts_as_journal(path):
        return load_journal(path)
    journal = journal_path(path)
    if (journal.exists() and (not path.exists() or journal.stat().st_mtime_ns > path.stat().st_mtime_ns)
            and _journals(journal, path.name)):
        return load_journal(journal)
    return trace_format.load(path)


def _journals(journal: Path, name: str) -> bool:
    """Whether `journal` is the journal of a trace file called `name` (unknown, for an older
    journal or an unreadable header: assumed so)."""
    from hch.files import starts_with

    first, newline, _ = starts_with(journal, 1 << 20).partition(b"\n")  # never blocks on a FIFO, nor reads all
    try:
        header = json.loads(first) if newline else None
    except ValueError:
        return True
    return not isinstance(header, dict) or header.get("trace") in (None, name)


def _starts_as_journal(path: Path) -> bool:
    """Whether the file's first line is a journal header (a journal renamed to .json)."""
    from hch.files import starts_with

    return starts_with(path, 64).replace(b" ", b"").startswith(b'{"format":"hch-journal"')
