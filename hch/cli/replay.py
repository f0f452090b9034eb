"""`hch replay`: re-run a trace from its recorded policy outputs, or with another policy."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import anyio
import click

from hch.cli import app
from hch.cli.options import llm_options
from hch.cli.params import NamedPath
from hch.cli.render import plain
from hch.files import check_output
from hch.policies.spec import make_policy
from hch.record import format as trace_format
from hch.record.journal import load_any
from hch.review.replay import replay as run_replay


@app.command()
@click.argument("path", type=NamedPath(dir_okay=False, path_type=Path))
@click.option("--policy", "-p", "spec", help="Let this policy act instead of the recording (see --from-node).")
@click.option("--from-node", type=int, help="With --policy: only from this workspace down.")
@click.option("--fallback", help="Policy for the calls the recording cannot serve (e.g. the recorded one, live).")
@click.option("--trace", "out", type=NamedPath(dir_okay=False, path_type=Path),
              help="Also write the replay's trace here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
@llm_options
def replay(
    path: Path, spec: str | None, from_node: int | None, fallback: str | None, out: Path | None, as_json: bool,
    **flags: Any,
) -> int:
    """Replay the trace at PATH. Exit 1 if a plain replay diverges; with --policy, report where it does.

    No call cache is read or written: recorded outputs must not enter it under the recorded policy's name.
    """
    if out is not None:
        check_output(out)  # a FIFO nothing reads: refused now, not after the replay
    recorded = trace_format.read_all(load_any(path))  # a bad record: one error now, not a failed node that diverges
    gc.freeze()  # the recording lives until exit: collections need not walk its objects again
    if from_node is not None and spec is None:
        raise click.UsageError("--from-node needs --policy")
    policy = make_policy(spec, flags) if spec is not None else None
    backup = make_policy(fallback, flags) if fallback is not None else None
    report, trace = anyio.run(
        lambda: run_replay(recorded, policy, from_node, meta={"replay_policy": spec}, fallback=backup)
    )
    if out is not None:
        trace_format.save(trace, out)
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), default=str))
    else:
        print(plain(report.text()))
    return 0 if report.reproduced or spec is not None else 1
