"""A run's trace file, written as the run goes: every node and edge change appended as a JSON line.

While a run goes, `Journal` receives every change of its `Trace` and appends one line per change
to `<trace>.journal.jsonl` beside the trace file (`run.json` → `run.journal.jsonl`), in the trace
file's own record layout (schema 2, see `hch.record.format`). When the run ends, `finish` appends
the end record (summary, status, answer) and renames the journal to the trace path, atomically:
the journal *is* the trace, nothing is written twice. If the process dies before that (SIGKILL,
a crash, a closed terminal), `load_journal` rebuilds the trace from it: the last record of a node
wins, and the run is `unfinished`.

Durability trade-off: lines are written to Python's buffer and flushed (one `write`
syscall, no fsync) at the end of every event-loop iteration in which something was
recorded, or every `MAX_PENDING` records, not once per line. A record therefore reaches
the operating system before the run awaits anything else (a slow LLM call, a person, a
sleep); a SIGKILL can only lose what the current iteration recorded: nothing a slow call
finished, and at most `MAX_PENDING` records of instant (expert) calls, which a rerun
redoes for free. The OS keeps flushed data across a process crash; a machine crash can
lose what it had not written to disk yet (there is no fsync: it would cost milliseconds).
A node changed several times in one iteration is written once, serialized at the flush from the
trace's own attribute dict (no copy per change). Journals of hch before schema 2 (`hch-journal`
headers, the same records) are still read.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from hch.errors import TraceError
from hch.files import check_writable_target, read_bytes, utf8_text
from hch.record import format as trace_format
from hch.record.claim import claim, output_mode
from hch.record.trace import Trace
from hch.validate import load_json

FORMAT = "hch-journal"
"""The header format of journals written before schema 2 (read, no longer written)."""
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
    """A `Trace` sink appending each change as a line of JSON, flushed once per loop iteration.

    Changes wait in memory until the flush at the end of the loop iteration; a node changed
    twice in one iteration (an instant leaf is added and finished at once) is written once.
    Also a plain `Trace` listener (called with the event and a copy of the attributes).
    """

    def __init__(self, path: str | Path, trace: Trace, trace_name: str | None = None) -> None:
        self.path = Path(path)
        check_writable_target(self.path, "journal", TraceError)  # a FIFO there would block the run
        self._file: BinaryIO | None = claim(self.path)  # refused if a live run holds it
        # a node's pending record is its live attribute dict (serialized at the flush); an edge's, a line
        self._nodes: dict[int, dict[str, Any]] = {}
        self._edges: dict[tuple[int, int], dict[str, Any]] = {}
        self._written: dict[int, dict[str, Any]] = {}  # the last flush's nodes (a call's edge may come next)
        self._flush_scheduled = False
        self._trace = trace
        self._file.write(trace_format.header_line(trace.meta, trace_name))
        for node, attrs in trace.nodes.items():  # a trace passed in may already hold nodes
            self._nodes[node] = attrs
        for source, target, data in trace.edges():
            self.edge(source, target, data)
        self.flush()

    def node(self, node: int, attrs: dict[str, Any]) -> None:
        """Record a node's current attributes (the `Sink` method)."""
        self._nodes[node] = attrs
        self._pending()

    def edge(self, source: int, target: int, attrs: dict[str, Any]) -> None:
        """Record an edge (a call edge is implied by the call node's `workspace`, and written only when
        that names another workspace: calls copied by earlier versions kept their old one)."""
        if attrs.get("kind") != "call" or self._workspace_of(target) != source:
            self._edges[source, target] = attrs
            self._pending()

    def _workspace_of(self, call: int) -> Any:
        """The workspace a call's node names; a streamed trace lets the node go once final, and a flush of
        a full buffer (or every record, without an event loop) may write it just before its edge comes."""
        attrs = self._trace.nodes.get(call) or self._nodes.get(call) or self._written.get(call, _NONE)
        return attrs.get("workspace")

    def __call__(self, event: str, attrs: dict[str, Any]) -> None:
        """Record one change (the `Trace` listener signature)."""
        attrs = dict(attrs)
        if event == "node":
            self.node(attrs.pop("id"), attrs)
        else:
            self.edge(attrs.pop("source"), attrs.pop("target"), attrs)

    def _pending(self) -> None:
        if len(self._nodes) + len(self._edges) >= MAX_PENDING:
            self.flush()
        elif not self._flush_scheduled:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        import asyncio  # here, not at the top: reading a trace or journal (`hch show`) needs no event loop

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
        if self._nodes or self._edges:
            node_line, edge_line = trace_format.node_line, trace_format.edge_line
            lines = [node_line(node, attrs) for node, attrs in self._nodes.items()]
            lines += [edge_line(source, target, attrs) for (source, target), attrs in self._edges.items()]
            self._file.write(b"".join(lines))
            self._written, self._nodes = self._nodes, {}
            self._edges.clear()
        self._file.flush()

    def finish(self, meta: dict[str, Any], trace_path: str | Path) -> Path:
        """Append the end record and make this file the trace at `trace_path` (one atomic rename).

        The file takes the permissions a plain `open(trace_path, "w")` would leave. A device or
        FIFO given as the trace path is written in place (the records copied), never renamed over.
        """
        from hch.files import _real, _special

        assert self._file is not None, "the journal was closed"
        self.flush()
        self._file.write(trace_format.end_line(meta))
        self._file.flush()
        target = _real(Path(trace_path))
        if _special(target):
            with open(target, "wb") as out, open(self.path, "rb") as source:
                shutil.copyfileobj(source, out)
            self.close(delete=True)
            return Path(trace_path)
        os.fchmod(self._file.fileno(), output_mode(target))
        os.replace(self.path, target)  # while still holding the lock: no other run has the path
        self._file.close()
        self._file = None
        return Path(trace_path)

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


_NONE: dict[str, Any] = {}


def load_journal(path: str | Path, calls: bool = True) -> Trace:
    """Rebuild a trace from a journal (or any trace file in the record layout); any problem is a
    one-line `TraceError`.

    Nodes keep their last recorded status (`running` for those the run was in), and the run's
    status is `unfinished`: the process was killed, or is still going. A last line cut short
    by the crash is ignored; a bad line elsewhere is an error.
    """
    path = Path(path)
    data = read_bytes(path, "journal", TraceError)
    if not data.isascii():
        utf8_text(data, path, "journal", TraceError)
    newline = data.find(b"\n", 0, 1 << 20)
    first = data[:newline if newline >= 0 else 1 << 20]
    try:
        header = load_json(first.decode("utf-8", "replace")) if first.strip() else {}
    except json.JSONDecodeError:
        header = {}
    if not isinstance(header, dict) or header.get("format") not in (FORMAT, trace_format.FORMAT):
        raise TraceError(f"{path} is not an hch journal (no \"format\": \"{trace_format.FORMAT}\" header)")
    version = header.get("schema_version")
    newest = SCHEMA_VERSION if header.get("format") == FORMAT else trace_format.SCHEMA_VERSION
    if not isinstance(version, int) or not 1 <= version <= newest:
        raise TraceError(f"{path} has journal schema version {version!r}; this hch reads versions 1 to {newest}")
    with trace_format.no_gc(kept=True):
        return trace_format.load_bytes(data, path, "journal", journal=True, calls=calls)


def load_any(path: str | Path, calls: bool = True) -> Trace:
    """A trace file, or the journal beside it when that is newer: the trace is missing (the run
    was killed or still goes), or a later run writing to the same path has not finished. Without
    `calls`, the policy calls may be left out (see `hch.record.format.parse_lazily`)."""
    path = Path(path)
    if not path.name:
        raise TraceError(f"give the path of a trace file, not {str(path)!r}")
    if path.name.endswith(SUFFIX) or _starts_as_journal(path):
        return load_journal(path, calls)
    journal = journal_path(path)
    if (journal.exists() and (not path.exists() or journal.stat().st_mtime_ns > path.stat().st_mtime_ns)
            and _journals(journal, path.name)):
        return load_journal(journal, calls)
    return trace_format.load(path, calls)


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

    start = starts_with(path, 64).replace(b" ", b"")
    return start.startswith(b'{"format":"hch-journal"')
