"""`hch ask`: answer one question with HCH_n and write its trace."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import click
from rich.console import Console

from hch.cli import app
from hch.cli.options import (
    cache_options,
    copies_option,
    depth_option,
    facts_option,
    limit_options,
    limits_from,
    llm_options,
    new_trace_path,
    open_cache,
    policy_option,
)
from hch.cli.render import plain, tree_view
from hch.engine import Copies, Result, answer
from hch.errors import RunAborted, Stopped
from hch.facts import Facts
from hch.policy_spec import make_policy
from hch.tasks import visible_context


@app.command()
@click.argument("question")
@depth_option
@policy_option
@click.option("--context", default="", help="Shared context every node sees (text, or @FILE).")
@facts_option
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the trace (default: a new file under traces/).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the answer.")
@copies_option
@cache_options
@limit_options
@llm_options
def ask(question: str, depth: int, policy: str, context: str, facts: Facts, trace_path: Path | None,
        as_json: bool, quiet: bool, copies: Copies, cache: Path, no_cache: bool, fail_fast: bool,
        **flags: Any) -> None:
    """Answer QUESTION with HCH_n; print the answer, its tree, a summary and the trace path."""
    chosen = make_policy(policy, flags)
    context = read_context(context)
    if facts == "hidden":
        visible_context(context)  # a context that is no task's facts: one line, before any file is made
    trace_path = trace_path or new_trace_path(question)
    call_cache = open_cache(cache, no_cache)
    try:
        result = anyio.run(
            lambda: answer(
                question, depth=depth, policy=chosen, context=context, limits=limits_from(flags),
                call_cache=call_cache, trace_path=trace_path, fail_fast=fail_fast,
                meta={"policy_spec": policy}, facts=facts, copies=copies,
            )
        )
    except (KeyboardInterrupt, Stopped):  # Ctrl-C anywhere, or Ctrl-D / quit at a human's prompt
        print(f"hch: interrupted; the trace of what completed is in {trace_path}", file=sys.stderr)
        sys.exit(130)
    except RunAborted as exc:  # still one line, now saying where the trace went
        raise RunAborted(f"{exc}; the trace of what completed is in {trace_path}") from None
    finally:
        if call_cache is not None:
            call_cache.close()
    report(result, as_json=as_json, quiet=quiet)


def read_context(value: str) -> str:
    """`--context` text, or the contents of the file named by `@FILE`."""
    if not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(f"cannot read context file {value[1:]}: {exc.strerror}") from None


def report(result: Result, as_json: bool, quiet: bool) -> None:
    """Print a run's outcome in the form the flags ask for."""
    if as_json:
        payload = {
            "answer": result.answer,
            "status": result.status,
            "summary": result.summary.model_dump(),
            "trace": str(result.trace_path) if result.trace_path else None,
        }
        print(json.dumps(payload))
        return
    if quiet:
        print(plain(result.answer))
        return
    console = Console(highlight=False)
    console.print(plain(result.answer), markup=False)
    console.print(tree_view(result.trace))
    console.print(result.summary.line(), markup=False, style="dim")
    if result.trace_path:
        console.print(f"trace: {result.trace_path}", markup=False)
