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
    budget_option,
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
from hch.cli.params import NamedPath
from hch.cli.progress import LiveProgress
from hch.cli.render import console, plain, tree_view
from hch.errors import HchError, NodeFailed, RunAborted, Stopped
from hch.files import check_output, read_text
from hch.policies.spec import make_policy
from hch.record.trace import Trace
from hch.review.outcome import TABLE, ExitStatus, exit_status
from hch.run.engine import Copies, Result, answer
from hch.run.facts import Facts
from hch.run.progress import Progress
from hch.tasks import visible_context


@app.command(epilog="\b\n" + TABLE)
@click.argument("question")
@depth_option
@budget_option
@policy_option
@click.option("--context", default="", help="Shared context every node sees (text, or @FILE).")
@facts_option
@click.option("--trace", "trace_path", type=NamedPath(dir_okay=False, path_type=Path),
              help="Where to write the trace (default: a new file under traces/).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object instead (also for a failed run: the exit status tells).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the answer (errors still go to stderr).")
@copies_option
@cache_options
@limit_options
@llm_options
def ask(question: str, depth: int, budget: int | None, policy: str, context: str, facts: Facts, trace_path: Path | None,
        as_json: bool, quiet: bool, copies: Copies, cache: Path, no_cache: bool, fail_fast: bool,
        **flags: Any) -> None:
    """Answer QUESTION with HCH_n; print the answer, its tree, a summary and the trace path.

    The exit status says how the run ended (below); errors go to stderr, the answer to stdout.
    """
    chosen = make_policy(policy, flags)
    bounded = click.get_current_context().get_parameter_source("depth") is not click.core.ParameterSource.DEFAULT
    run_depth = depth if budget is None or bounded else None  # a budgeted run without --depth: unbounded
    context = read_context(context)
    if facts == "hidden":
        visible_context(context)  # a context that is no task's facts: one line, before any file is made
    trace_path = trace_path or new_trace_path(question)
    check_output(trace_path)  # a FIFO nothing reads: refused now, not after the run
    call_cache = open_cache(cache, no_cache)
    trace, progress, failure = Trace(), Progress(), None  # the run's, to report on a failure too
    display, result = LiveProgress(progress, enabled=not interactive(policy)), None
    try:
        display.start()
        result = anyio.run(
            lambda: answer(
                question, depth=run_depth, budget=budget, policy=chosen, context=context, limits=limits_from(flags),
                call_cache=call_cache, trace_path=trace_path, fail_fast=fail_fast,
                meta={"policy_spec": policy}, facts=facts, copies=copies,
                trace=trace, progress=progress,
            )
        )
    except (KeyboardInterrupt, Stopped):  # Ctrl-C anywhere, or Ctrl-D / quit at a human's prompt
        display.stop()
        print(f"hch: interrupted; the trace of what completed is in {plain(str(trace_path))}", file=sys.stderr)
        sys.exit(130)
    except (NodeFailed, RunAborted) as exc:  # --fail-fast, or a policy that cannot work at all
        failure = exc
    finally:
        display.stop()
        if call_cache is not None:
            call_cache.close()
    sys.exit(report(result, trace, trace_path, failure, as_json=as_json, quiet=quiet))


def interactive(spec: str) -> bool:
    """Whether a person acts somewhere in the policy (a live progress line would draw over the prompt)."""
    return "human" in spec


def read_context(value: str) -> str:
    """`--context` text, or the contents of the file named by `@FILE`."""
    if not value.startswith("@"):
        return value
    if not value[1:].strip():
        raise click.BadParameter("an empty path names no file; write @FILE")
    return read_text(Path(value[1:]), "context file", click.BadParameter)


def report(result: Result | None, trace: Trace, trace_path: Path, failure: HchError | None,
           as_json: bool, quiet: bool) -> ExitStatus:
    """Print a run's outcome in the form the flags ask for; return its exit status.

    An answer goes to stdout; a run without one (the root failed, or a limit stopped it) prints
    nothing there but the JSON object of `--json`, and says what happened on stderr.
    """
    status = exit_status(trace, "error" if failure is not None or result is None else result.status)
    if isinstance(failure, RunAborted):  # the policy stopped the run, whatever limits nodes hit before
        status = ExitStatus.FAILED
    answered = status in (ExitStatus.OK, ExitStatus.GUESSED)
    if as_json:
        print(json.dumps(payload(result, trace, trace_path, failure, status)))
        return status
    if answered and result is not None:
        if quiet:
            print(plain(result.answer))
            return status
        out = console()
        out.print(plain(result.answer), markup=False)
        show_run(out, trace, result.summary.line(), trace_path)
        if status is ExitStatus.GUESSED:
            print(f"hch: note: the answer rests on a guess, a failed node or a limit (exit status {status})",
                  file=sys.stderr)
        return status
    if not quiet and result is not None:  # an aborted run (fail-fast, a policy that cannot work): one line
        show_run(console(stderr=True), trace, result.summary.line(), None)
    reason = what_failed(trace, failure)
    if status is ExitStatus.LIMITED:
        fail_line(f"stopped by a limit: {reason} (trace: {trace_path})")
    else:
        fail_line(f"the run failed: {reason} (trace: {trace_path})")
    return status


def show_run(out: Console, trace: Trace, summary: str, trace_path: Path | None) -> None:
    out.print(tree_view(trace, whole=not out.is_terminal))
    out.print(summary, markup=False, style="dim")
    if trace_path is not None:
        out.print(f"trace: {plain(str(trace_path))}", markup=False)


def what_failed(trace: Trace, failure: HchError | None) -> str:
    """The error of the run: the exception that stopped it, or the root's recorded error."""
    if failure is not None:
        return str(failure)
    root = trace.nodes[trace.root]
    return str(root.get("error") or root.get("answer"))


def fail_line(message: str) -> None:
    print("hch: error: " + " ".join(plain(message).split()), file=sys.stderr)


def payload(result: Result | None, trace: Trace, trace_path: Path, failure: HchError | None,
            status: ExitStatus) -> dict[str, Any]:
    """The `--json` object: for a run without an answer, `answer` is null and `error` says why."""
    answered = status in (ExitStatus.OK, ExitStatus.GUESSED)
    return {
        "answer": result.answer if result is not None and answered else None,
        "status": result.status if result is not None else "error",
        "error": None if answered else what_failed(trace, failure),
        "exit_status": int(status),
        "summary": result.summary.model_dump() if result is not None else trace.meta.get("summary"),
        "trace": str(trace_path),
    }
