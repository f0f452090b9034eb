"""`hch diff`: where two traces of the same question first differ, and a summary."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hch.cli import app
from hch.cli.params import NamedPath
from hch.cli.render import plain
from hch.errors import HchError
from hch.record.format import read_all
from hch.record.journal import load_any
from hch.review import diff as differ


class Unreadable(click.ClickException):
    """A trace to compare cannot be read: exit 2, as 1 means "they differ"."""

    exit_code = 2


@app.command()
@click.argument("a", type=NamedPath(dir_okay=False, path_type=Path))
@click.argument("b", type=NamedPath(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def diff(a: Path, b: Path, as_json: bool) -> int:
    """Compare traces A and B; exit 0 when they agree, 1 when they differ, 2 when one cannot be read."""
    try:
        first, second = read_all(load_any(a)), read_all(load_any(b))  # unreadable: exit 2, not 1
    except HchError as exc:
        raise Unreadable(str(exc)) from None
    report = differ.diff(first, second)
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), default=str))
    else:
        if first.meta.get("question") != second.meta.get("question"):
            print("note: the traces answer different questions")
        print(plain(report.text()))
    return 0 if report.same else 1
