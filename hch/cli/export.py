"""`hch export`: a trace in another format (json, graphml, gexf, dot, jsonl)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hch.cli import app
from hch.cli.options import NamedPath
from hch.record.journal import SUFFIX, load_any
from hch.review import export as exporting


@app.command()
@click.argument("path", type=NamedPath(dir_okay=False, path_type=Path))
@click.option("--format", "-f", "fmt", type=click.Choice(exporting.FORMATS), default="json", show_default=True,
              help="json is lossless; graphml, gexf and dot hold nested attributes as JSON strings.")
@click.option("--output", "-o", type=NamedPath(dir_okay=False, allow_dash=True, path_type=Path),
              help="Where to write ('-': stdout; default: beside the trace, with the format's extension).")
def export(path: Path, fmt: str, output: Path | None) -> None:
    """Write the trace at PATH in another format; print where (with -o -, write it to stdout)."""
    trace = load_any(path)
    if str(output) == "-":
        exporting.write(trace, sys.stdout.buffer, fmt)
        sys.stdout.buffer.flush()
        return
    if output is None:
        stem = path.name.removesuffix(SUFFIX).removesuffix(".json")
        output = path.with_name(f"{stem}.export.json" if fmt == "json" else f"{stem}.{fmt}")
    print(exporting.export(trace, output, fmt))
