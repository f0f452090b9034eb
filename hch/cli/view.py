"""`hch view`: write a trace as one self-contained HTML page and print its path; or a sweep's pages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hch.cli import app
from hch.cli.params import NamedPath
from hch.cli.render import plain
from hch.errors import HchError
from hch.record.format import read_all
from hch.record.journal import SUFFIX, load_any
from hch.review import viewer

if TYPE_CHECKING:
    from hch.study.sweep_dir import Run


@app.command()
@click.argument("path", type=NamedPath(path_type=Path))
@click.option("--output", "-o", type=NamedPath(allow_dash=True, path_type=Path),
              help="Where to write the page ('-': stdout; default: beside the trace, .html); for a sweep, a "
                   "directory for the pages and their index.")
def view(path: Path, output: Path | None) -> None:
    """Write the trace at PATH as an HTML page (no network needed to open it); print its path.

    PATH may also be a sweep's output directory: each run's page is written beside its trace (or into
    the directory -o names), with an index.html listing the runs, whose path is printed.
    """
    if path.is_dir():
        view_sweep(path, output)
        return
    trace = load_any(path)
    if str(output) == "-":
        sys.stdout.buffer.write(viewer.render(trace).encode())
        sys.stdout.buffer.flush()
        return
    if output is None:
        stem = path.name.removesuffix(SUFFIX).removesuffix(".json")
        output = path.with_name(stem + ".html")
    print(plain(str(viewer.write(trace, output))))


def view_sweep(folder: Path, output: Path | None) -> None:
    """A page per run of the sweep in `folder` and an index of them; a run whose trace cannot be read
    is named on stderr and listed as unreadable."""
    from hch.study.sweep_dir import output_for, runs, write_index

    if str(output) == "-":
        raise click.UsageError(f"-o - writes one page; {plain(str(folder))} is a sweep of many: give one run's "
                               "trace (hch show DIR lists them) or an output directory")
    pages: list[tuple[Run, Path | None]] = []
    found = runs(folder)
    for run in found:
        try:
            trace = read_all(load_any(run.trace))
        except HchError as exc:
            print(f"hch: warning: run {plain(run.id)} (n={run.depth}): {plain(str(exc))}", file=sys.stderr)
            pages.append((run, None))
            continue
        pages.append((run, viewer.write(trace, output_for(run, folder, output, ".html"))))
    index = (output or folder) / "index.html"
    print(plain(str(write_index(folder, pages, index))))
