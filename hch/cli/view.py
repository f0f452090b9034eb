"""`hch view`: write a trace as one self-contained HTML page and print its path."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hch.cli import app
from hch.cli.options import NamedPath
from hch.record.journal import SUFFIX, load_any
from hch.review import viewer


@app.command()
@click.argument("path", type=NamedPath(dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=NamedPath(dir_okay=False, allow_dash=True, path_type=Path),
              help="Where to write the page ('-': stdout; default: beside the trace, .html).")
def view(path: Path, output: Path | None) -> None:
    """Write the trace at PATH as an HTML page (no network needed to open it); print its path."""
    trace = load_any(path)
    if str(output) == "-":
        sys.stdout.buffer.write(viewer.render(trace).encode())
        sys.stdout.buffer.flush()
        return
    if output is None:
        stem = path.name.removesuffix(SUFFIX).removesuffix(".json")
        output = path.with_name(stem + ".html")
    print(viewer.write(trace, output))
