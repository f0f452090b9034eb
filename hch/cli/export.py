"""`hch export`: a trace in another format (json, graphml, gexf, dot, jsonl); or every run of a sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hch.cli import app
from hch.cli.params import NamedPath
from hch.cli.render import plain
from hch.errors import HchError, TraceError
from hch.record.format import read_all
from hch.record.journal import SUFFIX, load_any
from hch.review import export as exporting


@app.command()
@click.argument("path", type=NamedPath(path_type=Path))
@click.option("--format", "-f", "fmt", type=click.Choice(exporting.FORMATS), default="json", show_default=True,
              help="json is lossless; graphml, gexf and dot hold nested attributes as JSON strings.")
@click.option("--output", "-o", type=NamedPath(allow_dash=True, path_type=Path),
              help="Where to write ('-': stdout; default: beside the trace, with the format's extension); "
                   "for a sweep, a directory.")
def export(path: Path, fmt: str, output: Path | None) -> None:
    """Write the trace at PATH in another format; print where (with -o -, write it to stdout).

    PATH may also be a sweep's output directory: every run's trace is exported (beside it, or into the
    directory -o names), one path printed per run.
    """
    if path.is_dir():
        export_sweep(path, fmt, output)
        return
    trace = load_any(path)
    if str(output) == "-":
        exporting.write(trace, sys.stdout.buffer, fmt)
        sys.stdout.buffer.flush()
        return
    if output is None:
        stem = path.name.removesuffix(SUFFIX).removesuffix(".json")
        output = path.with_name(f"{stem}.export.json" if fmt == "json" else f"{stem}.{fmt}")
    print(plain(str(exporting.export(trace, output, fmt))))


def export_sweep(folder: Path, fmt: str, output: Path | None) -> None:
    """Export every run of the sweep in `folder`; a run whose trace cannot be read is named on stderr,
    the others are still written, and the exit status is then 1."""
    from hch.study.sweep_dir import output_for, runs

    if str(output) == "-":
        raise click.UsageError(f"-o - writes one trace; {plain(str(folder))} is a sweep of many: give one run's "
                               "trace (hch show DIR lists them) or an output directory")
    found = runs(folder)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
    failed = 0
    for run in found:
        try:
            trace = read_all(load_any(run.trace))
        except HchError as exc:
            failed += 1
            print(f"hch: warning: run {plain(run.id)} (n={run.depth}): {plain(str(exc))}", file=sys.stderr)
            continue
        suffix = ".export.json" if fmt == "json" else f".{fmt}"
        print(plain(str(exporting.export(trace, output_for(run, folder, output, suffix), fmt))))
    if failed:
        raise TraceError(f"{failed} of {len(found)} runs could not be exported (named above)")
