"""`hch show`: a trace's tree and statistics, or one workspace in full."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hch.cli import app, render
from hch.cli.params import NamedPath
from hch.cli.render import plain, tree_view
from hch.errors import TraceError, read_text
from hch.record import format as trace_format
from hch.record.journal import load_any
from hch.record.summary import Summary
from hch.record.trace import Trace
from hch.review import trace_stats

if TYPE_CHECKING:
    from hch.study.sweep import RunRecord

WHOLE_BYTES = 256 << 20
"""`hch show` loads a trace file whole up to this size (a 10^5-workspace trace is about 120 MB)."""
READ_CALLS = 20_000
"""`hch show` of a finished trace with more policy calls than this does not read the calls' content (the
statistics are then the run's recorded summary, without the critical path; `--full` reads them)."""


@app.command()
@click.argument("path", type=NamedPath(path_type=Path))
@click.option("--node", "-n", "node", type=int, help="Show this workspace (or call) in full.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead (statistics, or the node).")
@click.option("--lines", type=click.IntRange(min=1), default=40, show_default=True, help="Tree lines to show.")
@click.option("--full", is_flag=True, help="Load a large trace whole for its tree and every statistic (by default "
              f"a trace file over {WHOLE_BYTES >> 20} MB shows only the summary its last record holds, and one of "
              f"over {READ_CALLS:,} policy calls its recorded summary without the critical path).")
def show(path: Path, node: int | None, as_json: bool, lines: int, full: bool = False) -> None:
    """Show the trace at PATH: its tree and statistics (an unfinished run's journal is read if needed).

    PATH may also be a sweep's output directory: its runs are listed (from runs.jsonl).
    """
    if path.is_dir() and (path.name or (path / "runs.jsonl").is_file()):  # '' (Path('.')) is no path given
        show_sweep(path, as_json)
        return
    if not full and node is None and _large(path) and show_summary(path, as_json):
        return
    recorded = not full and node is None and (_recorded_calls(path) or 0) > READ_CALLS
    gc.disable()  # the trace lives until exit: no collection need walk its objects, not even once
    trace = load_any(path, calls=not recorded)  # the recorded summary stands for the calls: not read
    if recorded and not isinstance(trace.meta.get("summary"), dict):  # a newer journal was read instead
        trace, recorded = load_any(path), False
    gc.freeze()
    gc.enable()
    if node is not None:
        record = node_record(trace, node)
        if as_json:
            print(json.dumps(record, ensure_ascii=False, default=str))
        else:
            print_node(record)
        return
    figures = trace_stats.compute(trace, calls=not recorded and (full or _calls(trace) <= READ_CALLS))
    if as_json:
        print(json.dumps(trace_stats.as_json(figures)))
        return
    console = render.console()
    if trace.meta.get("source") == "journal":
        console.print("(read from the journal: the run was killed, or is still going)", markup=False,
                      style="yellow")
    console.print(f"question: {plain(figures.question)}", markup=False)
    if trace.meta.get("context"):
        console.print(f"context: {plain(str(trace.meta['context']))}", markup=False)
    answer = figures.answer if figures.answer is not None else "(none)"
    console.print(f"answer: {plain(answer)}", markup=False)
    console.print(tree_view(trace, max_lines=lines, whole=not console.is_terminal))
    console.print(figures.text(), markup=False)


def _calls(trace: Trace) -> int:
    return sum(1 for data in trace.nodes.values() if data["kind"] == "call")


def _recorded_calls(path: Path) -> int | None:
    """The policy calls a finished trace's end record counts (None: no such record, or no count)."""
    try:
        _, end = trace_format.ends(path)
    except TraceError:
        return None
    summary = end.get("summary") if end is not None else None
    calls = summary.get("policy_calls") if isinstance(summary, dict) else None
    return calls if type(calls) is int else None


def _large(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > WHOLE_BYTES
    except OSError:
        return False


def show_summary(path: Path, as_json: bool) -> bool:
    """A large finished trace's question, answer and summary from its first and last records only
    (nothing else is read); False when the file has no end record to take them from."""
    try:
        meta, end = trace_format.ends(path)
    except TraceError:
        return False
    if end is None:
        return False
    meta.update(end)
    summary = meta.get("summary")
    if not isinstance(summary, dict):
        return False
    if as_json:
        print(json.dumps({"question": meta.get("question"), "answer": meta.get("answer"),
                          "status": meta.get("status"), "summary": summary, "whole": False}, default=str))
        return True
    console = render.console()
    console.print(f"question: {plain(str(meta.get('question')))}", markup=False)
    console.print(f"answer: {plain(str(meta.get('answer')))} ({plain(str(meta.get('status')))})", markup=False)
    try:
        console.print(Summary.model_validate(summary).line(), markup=False)
    except ValueError:
        console.print(plain(json.dumps(summary, default=str)), markup=False)
    size = path.stat().st_size
    console.print(f"(a {size / 1e6:,.0f} MB trace: the summary above is its last record; "
                  "`hch show --full` loads it whole for the tree and statistics)", markup=False, style="yellow")
    return True


def node_record(trace: Trace, node: int) -> dict[str, Any]:
    """A workspace with its policy calls (or a single call), as plain data."""
    if node not in trace.nodes:
        raise TraceError(f"the trace has no node {node} (it has ids 0 to {max(trace.nodes)})")
    data = {"id": node, **trace.node(node)}
    if data["kind"] == "workspace":
        data["calls"] = [{"id": c, **trace.node(c)} for c in sorted(trace.node_calls(node))]
        data["subquestions"] = [
            {"id": child, "question": trace.node(child)["question"], "step": edge["step"],
             "reused": edge["kind"] == "reuse"}
            for child, edge in trace.children(node)
        ]
        if data.get("pointers"):  # pointer mode: what each of the node's pointers holds
            messages = trace.meta.get("messages") or {}
            data["messages"] = {ref: messages.get(ref[2:]) for ref in data["pointers"].values()}
    return data


def print_node(record: dict[str, Any]) -> None:
    """A node record as readable text (not wrapped); every value from a policy is escaped."""

    def out(text: str) -> None:
        print(plain(text))

    if record["kind"] == "call":
        out(f"call #{record['id']} of workspace #{record['workspace']}")
        print_call(record, out)
        return
    out(f"workspace #{record['id']} · n={record['depth']} · {record['status']} · policy {record['policy']}")
    out(f"question: {record['question']}")
    out(f"answer: {record['answer']}")
    for name, ref in (record.get("pointers") or {}).items():  # pointer mode (hch.run.pointers)
        out(f"pointer {name} = {ref}: {json.dumps((record.get('messages') or {}).get(ref), ensure_ascii=False)}")
    for expansion in record.get("expansions") or []:
        out(f"expanded {expansion['pointer']} ({expansion['message']}) after step {expansion['step']}")
    if record.get("oracle"):
        out("answered by the task's environment from the facts (no policy call)")
    for key in ("cycle_of", "limit", "error"):
        if record.get(key) is not None:
            out(f"{key}: {record[key]}")
    ended = record.get("ended")
    out(f"started {record['started']:.4f}s, ended " + ("—" if ended is None else f"{ended:.4f}s"))
    for sub in record["subquestions"]:
        out(f"  step {sub['step']}: #{sub['id']} {sub['question']}" + (" (reused)" if sub["reused"] else ""))
    for call in record["calls"]:
        out(f"── call #{call['id']}" + (" (call cache hit)" if call.get("cached") else ""))
        print_call(call, out)


def print_call(call: dict[str, Any], out: Callable[[str], None]) -> None:
    usage = call.get("usage") or {}
    original = call.get("original_latency")
    then = "" if original is None else f" (a cache hit: the call took {float(original):.4f}s when it was made)"
    out(f"latency {float(call.get('latency') or 0):.4f}s{then} · usage {json.dumps(usage, default=str)}")
    out("input: " + json.dumps(call.get("input"), ensure_ascii=False, indent=2, default=str))
    if call.get("error"):
        out(f"error: {call['error']}")
        if call.get("error_traceback"):
            print(plain(call["error_traceback"]).rstrip("\n"))
    else:
        out("output: " + json.dumps(call.get("output"), ensure_ascii=False, indent=2, default=str))
    if call.get("raw") is not None:
        out("raw: " + json.dumps(call["raw"], ensure_ascii=False, indent=2, default=str))
    if call.get("attempts"):
        out("attempts: " + json.dumps(call["attempts"], ensure_ascii=False, indent=2, default=str))


def show_sweep(folder: Path, as_json: bool) -> None:
    """A sweep directory's runs, one line each: id, votes, depth, status, answer and trace path."""
    from hch.study.sweep import RUNS_FILE, RunRecord, upgraded

    path = folder / RUNS_FILE
    if not path.is_file():
        raise TraceError(f"{folder} is a directory but not a sweep's (no {RUNS_FILE}); give a trace file")
    latest: dict[tuple[int, str, int, int | None], RunRecord] = {}
    for line in read_text(path, "list of finished runs", TraceError).splitlines():
        if line.strip():
            try:
                record = RunRecord.model_validate(upgraded(json.loads(line), folder))  # older runs too
            except ValueError:
                continue  # a torn last line of a killed sweep, or a foreign line: not a run
            key = (record.votes, record.id, record.depth, record.budget)
            latest[key] = record  # a run cut short, then made: the latter
    records = sorted(latest.values(), key=lambda r: (r.votes, r.id, r.depth, r.budget or 0))
    if as_json:
        for record in records:
            print(json.dumps({"id": record.id, "votes": record.votes, "depth": record.depth, "status": status(record),
                              "correct": record.correct, "answer": record.answer,
                              "trace": str(folder / record.trace)}, ensure_ascii=False))
        return
    out = render.console()
    unfinished = sum(not r.finished for r in records)
    out.print(f"{len(records)} runs in {plain(str(folder))}" + (f" ({unfinished} unfinished: rerun the sweep to "
              "finish them)" if unfinished else ""), markup=False)
    for r in records:
        graded = "" if r.correct is None else (" ✓" if r.correct else " ✗")
        budget = "" if r.budget is None else f" budget={r.budget}"
        out.print(f"{plain(r.id)} votes={r.votes} n={r.depth}{budget} {status(r)}{graded} → {plain(r.answer, 60)} · "
                  f"{plain(str(folder / r.trace))}", markup=False)


def status(record: RunRecord) -> str:
    """A run's status, or `unfinished` for one interrupted or cut short by the sweep's budget (its
    record says `error`, but the run did not fail: a resumed sweep makes it)."""
    return record.status if record.finished else "unfinished"
