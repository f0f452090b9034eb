"""A sweep's output directory as `hch export` and `hch view` take it: every run's trace, and an index
page linking the viewer pages of all of them."""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

from hch.errors import TraceError, read_text
from hch.files import write_atomic
from hch.study.sweep import RUNS_FILE, RunRecord, upgraded


@dataclass(frozen=True)
class Run:
    """One run of a sweep, as its `runs.jsonl` records it (the latest record of each run)."""

    id: str
    votes: int
    depth: int
    status: str
    correct: bool | None
    answer: str
    trace: Path
    """The run's trace file (or where it will be: an unfinished run's journal is beside it)."""


def is_sweep(path: Path) -> bool:
    """Whether `path` is a directory holding a sweep's list of runs."""
    return path.is_dir() and (path / RUNS_FILE).is_file()


def runs(folder: Path) -> list[Run]:
    """The runs of the sweep in `folder`, ordered by votes, id and depth; a `TraceError` if it is no
    sweep's directory."""
    if not is_sweep(folder):
        raise TraceError(f"{folder} is a directory but not a sweep's (no {RUNS_FILE}); give a trace file")
    latest: dict[tuple[int, str, int], Run] = {}
    for line in read_text(folder / RUNS_FILE, "list of finished runs", TraceError).splitlines():
        if not line.strip():
            continue
        try:
            record = RunRecord.model_validate(upgraded(json.loads(line), folder))
        except ValueError:
            continue  # a torn last line of a killed sweep, or a foreign line: not a run
        status = record.status if record.finished else "unfinished"
        latest[(record.votes, record.id, record.depth)] = Run(
            record.id, record.votes, record.depth, status, record.correct, record.answer, folder / record.trace
        )
    return [latest[key] for key in sorted(latest)]


def output_for(run: Run, folder: Path, directory: Path | None, suffix: str) -> Path:
    """Where a run's export or page goes: beside its trace, or in `directory` at the trace's place
    relative to the sweep's `folder` (so runs of different questions never share a name)."""
    name = run.trace.name.removesuffix(".json") + suffix
    if directory is None:
        return run.trace.with_name(name)
    try:
        place = run.trace.parent.relative_to(folder)
    except ValueError:  # a trace outside the sweep's folder (an old layout): its own name
        place = Path()
    return directory / place / name


def write_index(folder: Path, pages: list[tuple[Run, Path | None]], path: Path) -> Path:
    """An HTML page listing the sweep's runs, each linked to its viewer page (None: it could not be
    read); every value shown is escaped."""
    rows = []
    for run, page in pages:
        cells = [run.id, str(run.votes), str(run.depth), run.status,
                 "" if run.correct is None else ("✓" if run.correct else "✗"), run.answer]
        link = (f'<a href="{html.escape(Path(os.path.relpath(page, path.parent)).as_posix(), quote=True)}">view</a>'
                if page is not None else "(unreadable)")
        rows.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + f"<td>{link}</td></tr>")
    title = html.escape(f"Sweep {folder.resolve().name}: {len(pages)} runs")
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:14px system-ui,sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}}
td:nth-child(6){{max-width:40em;overflow-wrap:anywhere}}</style></head>
<body><h1>{title}</h1>
<table><thead><tr><th>id</th><th>votes</th><th>n</th><th>status</th><th>correct</th><th>answer</th><th>trace</th>
</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    write_atomic(path, document.encode("utf-8", "backslashreplace"))
    return path
