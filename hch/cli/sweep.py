"""`hch sweep`: every question of a task suite or a JSONL file at every depth; figures, table, plot."""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path
from typing import Any

import anyio
import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from hch.cli import app
from hch.cli.options import (
    cache_options,
    copies_option,
    facts_option,
    limit_options,
    limits_from,
    llm_options,
    open_cache,
    policy_option,
)
from hch.cli.params import NamedPath
from hch.cli.render import plain
from hch.cli.workers import open_pool, workers_options
from hch.errors import NodeFailed, RunAborted, Stopped
from hch.policies.spec import make_policy
from hch.policies.vote import MAX_VOTES, vote
from hch.review.outcome import ExitStatus
from hch.run.budget import unpriced_models
from hch.run.call_budget import MAX_BUDGET
from hch.run.facts import Facts
from hch.run.policy import Policy
from hch.study.estimate import estimate_rows, print_estimate
from hch.study.grading import GRADERS
from hch.study.question_set import Item, load
from hch.study.rows import Row, aggregate
from hch.study.sweep import Outcome, RunRecord, SweepConfig, check_items, run_sweep
from hch.study.workers import Pool
from hch.tasks import TASKS, get_task

STUDIES = Path("studies")


MAX_LISTED = 1000
"""Depths or vote counts one sweep may list."""
MAX_NUMBER = 10_000
"""The largest depth or vote count a sweep may list (a sweep prepares every depth up to its deepest)."""
MAX_QUESTIONS = 100_000
"""Questions a task suite may generate for one sweep."""


def parse_numbers(text: str, what: str, minimum: int, maximum: int = MAX_NUMBER) -> list[int]:
    """"0-6", "1,3,5", "0-2,5" or "3" as a sorted list of distinct integers."""
    numbers: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if match is None:
            raise click.BadParameter(f"{text!r} is not a list of {what} like 0-6 or 1,3,5")
        if max(len(match[1]), len(match[2] or "")) > 18:  # before int(): no 5,000-digit numbers
            raise click.BadParameter(f"{what} must be at most {maximum}, not {plain(part.strip(), 40)}")
        low, high = int(match[1]), int(match[2] or match[1])
        if high < low:
            raise click.BadParameter(f"the range {part.strip()!r} is empty")
        if high - low + 1 + len(numbers) > MAX_LISTED:  # checked before the numbers are made
            raise click.BadParameter(f"{text!r} lists more than {MAX_LISTED} {what}")
        if high > maximum:
            raise click.BadParameter(f"{what} must be at most {maximum}, not {high}")
        numbers.update(range(low, high + 1))
    if min(numbers) < minimum:
        raise click.BadParameter(f"{what} must be {minimum} or more")
    return sorted(numbers)


@app.command()
@click.argument("questions_file", required=False, type=NamedPath(dir_okay=False, path_type=Path))
@click.option("--task", "-t", help=f"A built-in task suite: {', '.join(TASKS)}.")
@click.option("--questions", "-n", "count", type=click.IntRange(min=1, max=MAX_QUESTIONS), default=50,
              show_default=True, help="How many questions to generate (with --task).")
@click.option("--depths", default="0-6", show_default=True, help="Depths to run, e.g. 0-6 or 0,2,4.")
@click.option("--budget", type=click.IntRange(min=1, max=MAX_BUDGET), metavar="N",
              help="Budgeted HCH: every run may make at most N policy calls (as --budgets N).")
@click.option("--budgets", metavar="LIST",
              help="Sweep over call budgets instead of depth, e.g. 10,100,1000 (rows and plots by budget); "
                   "depth is unbounded unless --depths names one depth.")
@policy_option
@facts_option
@click.option("--votes", default="1", show_default=True,
              help="Voting copies to compare, e.g. 1,3,5 (k > 1 runs vote(k, POLICY)).")
@click.option("--grader", type=click.Choice(GRADERS),
              help="Grader for file questions that name none (default: exact).")
@click.option("--concurrency", "-j", type=click.IntRange(min=1), default=8, show_default=True,
              help="Questions run at the same time at most.")
@click.option("--out", "-o", type=NamedPath(file_okay=False, path_type=Path),
              help="Output directory (default: studies/NAME); rerun the same command to resume.")
@click.option("--no-plot", is_flag=True, help="Skip the PNG/SVG plot.")
@click.option("--estimate", is_flag=True,
              help="Dry run: estimate the calls, tokens and cost of the runs left (from a --pilot or earlier runs "
                   "in --out) and start nothing.")
@click.option("--pilot", type=click.IntRange(min=1), metavar="N",
              help="Before estimating, run the first N questions at every depth (kept as runs of the sweep). "
                   "Implies --estimate.")
@click.option("--participant/--no-participant", default=None,
              help="Never show accuracy or gold-derived figures (default: on when a person plays H).")
@copies_option
@cache_options
@limit_options
@llm_options
@workers_options
def sweep(questions_file: Path | None, task: str | None, count: int, depths: str, budget: int | None,
          budgets: str | None, policy: str, facts: Facts,
          votes: str, grader: str | None, concurrency: int, out: Path | None, no_plot: bool, estimate: bool,
          pilot: int | None, participant: bool | None, copies: str, cache: Path, no_cache: bool, fail_fast: bool,
          workers: int | None, ray_address: str | None, **flags: Any) -> None:
    """Run every question at every depth and report accuracy, cost and time per depth.

    Give a task (--task wildcard-search) or a JSONL file of questions (QUESTIONS_FILE).
    --max-total-tokens and --max-cost bound the whole sweep (resumed invocations included).
    Exits with status 4 when any run failed (its root ended in error), else 5 when the budget left runs
    unmade, after writing every output; 4 also when --fail-fast or a policy that cannot work stops it.
    """
    depth_list = parse_numbers(depths, "depths", 0)
    budget_list = budget_points(budget, budgets, depth_list)
    if budget_list is not None:  # a sweep over budget leaves depth unbounded unless --depths names one
        given = click.get_current_context().get_parameter_source("depths") is not click.core.ParameterSource.DEFAULT
        if given and len(depth_list) != 1:
            raise click.UsageError("a sweep over budget takes at most one depth (--depths D, an extra bound)")
        depth_list = depth_list if given else []
    vote_list = parse_numbers(votes, "vote counts", 1, MAX_VOTES)  # a vote's own bound, before any other check
    seed = flags["seed"] if flags["seed"] is not None else 0
    items, config = source(questions_file, task, count, seed, grader, facts)
    limits = limits_from(flags)  # tokens and money: the sweep's budget, not each run's
    config = config.model_copy(update={
        "depths": depth_list, "policy": policy, "votes": vote_list, "concurrency": concurrency,
        "limits": limits.model_copy(update={"max_total_tokens": None, "max_cost": None}),
        "max_total_tokens": limits.max_total_tokens, "max_cost": limits.max_cost,
        "facts": facts, "copies": copies, "budgets": budget_list,
    })
    base = make_policy(policy, flags)
    policies = {k: vote(k, base) for k in vote_list}
    check_items(items, policies, facts, limits.pointers)
    estimate = estimate or pilot is not None
    warn_unpriced(base, limits.max_total_tokens is not None or limits.max_cost is not None, estimate)
    from hch.policies.human import has_human  # hch.policies.human imports hch.cli.render: not at module level

    human = has_human(base)
    participant = human if participant is None else participant
    out = out or STUDIES / (default_name(questions_file, task, count, seed) + ("-hidden" if facts == "hidden" else ""))
    pool = open_pool(workers, ray_address, human) if not estimate or pilot is not None else None
    remake = functools.partial(variants, policy, flags, tuple(vote_list)) if pool is not None else None
    call_cache = open_cache(cache, no_cache)
    console = Console(highlight=False, stderr=True)
    try:
        if estimate:
            if pilot is not None:
                anyio.run(lambda: run_sweep(items, config, policies, out, call_cache, fail_fast=fail_fast,
                                            pilot=pilot, pool=pool, remake=remake))
            print_estimate(estimate_rows(items, config, policies, out), config, policies, out, pilot)
            return
        out.mkdir(parents=True, exist_ok=True)  # a folder that cannot be made: one line, before the bar is drawn
        outcome = anyio.run(lambda: run_with_progress(items, config, policies, out, call_cache, console, fail_fast,
                                                      quiet=human, participant=participant, pool=pool, remake=remake))
    except (KeyboardInterrupt, Stopped):  # Ctrl-C, or a person quitting at the prompt
        print(f"hch: interrupted; finished runs are kept in {plain(str(out))}: rerun the same command to resume",
              file=sys.stderr)
        sys.exit(130)
    except (NodeFailed, RunAborted) as exc:  # --fail-fast, or a policy that cannot work at all (a dead server)
        print("hch: error: the sweep stopped: " + " ".join(plain(str(exc)).split()) +
              f"; finished runs are kept in {plain(str(out))}: rerun the same command to resume",
              file=sys.stderr)
        sys.exit(ExitStatus.FAILED)
    finally:
        if pool is not None:
            pool.close()
        if call_cache is not None:
            call_cache.close()
    from hch.study.report import write_outputs  # here, not at the top: matplotlib would slow every `hch` start

    paths = write_outputs(out, config, outcome, plot=not no_plot)
    report(outcome, paths, policy, participant)
    failed = sum(record.status == "error" for record in outcome.records)
    if failed:  # a script running sweeps must not take a sweep with failed runs for a clean one
        print(f"hch: error: {failed} of {len(outcome.records)} runs failed (root error; their records are in"
              f" {plain(str(out / 'runs.jsonl'))})", file=sys.stderr)
        sys.exit(ExitStatus.FAILED)
    if outcome.not_run:  # nor for a complete one: the rest waits for a higher budget
        sys.exit(ExitStatus.LIMITED)


def budget_points(budget: int | None, budgets: str | None, depths: list[int]) -> list[int] | None:
    """The budgets of a sweep over budget (`--budget N` is one), or None for a sweep over depth."""
    if budget is not None and budgets is not None:
        raise click.UsageError("give --budget N or --budgets LIST, not both")
    if budget is None and budgets is None:
        return None
    found = [budget] if budget is not None else parse_numbers(budgets or "", "budgets", 1)
    if found[-1] > MAX_BUDGET:
        raise click.BadParameter(f"budgets must be at most {MAX_BUDGET}, not {found[-1]}", param_hint="--budgets")
    return found
def variants(spec: str, flags: dict[str, Any], votes: tuple[int, ...]) -> dict[int, Policy]:
    """The policy of each number of votes (a module-level function: workers call it to make their own)."""
    base = make_policy(spec, flags)
    return {k: vote(k, base) for k in votes}


def warn_unpriced(policy: Any, budget: bool, estimate: bool) -> None:
    """One line on stderr when a budget or an estimate is asked for and a model has no price."""
    missing = unpriced_models(policy)
    if missing and (budget or estimate):
        what = "an estimate" if estimate else "a budget"
        print(f"hch: warning: model {missing[0]!r} has no price, so its cost counts as $0 in {what}: give --price "
              "IN,OUT or add the model to the preset's prices", file=sys.stderr)


def source(questions_file: Path | None, task: str | None, count: int, seed: int,
           grader: str | None, facts: Facts = "shown") -> tuple[list[Item], SweepConfig]:
    """The questions and the part of the configuration that names where they came from."""
    if (questions_file is None) == (task is None):
        raise click.UsageError("give either a questions file or --task NAME (not both)")
    if task is not None:
        suite = get_task(task)
        items = suite.generate(count, seed, facts=facts)
        return items, SweepConfig(source=f"task:{suite.name}", task=suite.name, questions=len(items), seed=seed,
                                  depths=[], policy="")
    assert questions_file is not None
    items = load(questions_file, grader)  # type: ignore[arg-type]
    return items, SweepConfig(source=str(questions_file), questions=len(items), depths=[], policy="")


def default_name(questions_file: Path | None, task: str | None, count: int, seed: int) -> str:
    if task is not None:
        return f"{task.replace('_', '-')}-n{count}-seed{seed}"
    assert questions_file is not None
    return questions_file.stem


async def run_with_progress(items: list[Item], config: SweepConfig, policies: dict[int, Any], out: Path,
                            call_cache: Any, console: Console, fail_fast: bool, quiet: bool = False,
                            participant: bool = False, pool: Pool | None = None, remake: Any = None) -> Outcome:
    """The sweep with a live progress bar on stderr; `quiet` (a person at the prompt): no bar, the count of
    runs done goes into the prompt's header instead; `participant`: no gold-derived figure is shown."""
    if quiet:
        from hch.policies.human import note_progress

        total = {"runs": 0, "done": 0}

        def planned(to_run: int, done: int) -> None:
            total["runs"] = to_run
            note_progress(f"0 of {to_run} runs done" if to_run else "")

        def finished(record: RunRecord) -> None:
            total["done"] += 1
            note_progress(f"{total['done']} of {total['runs']} runs done")

        return await run_sweep(items, config, policies, out, call_cache, on_run=finished, on_plan=planned,
                               fail_fast=fail_fast, pool=pool, remake=remake)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("sweep", total=None, status="")
        tally = {"correct": 0, "graded": 0, "calls": 0, "invocations": 0}

        def plan(to_run: int, done: int) -> None:
            note = f" ({done} runs already done in {escape(str(out))})" if done else ""  # the bar reads markup
            progress.update(bar, total=to_run, description=f"sweep{note}")

        def advance(record: RunRecord) -> None:
            tally["calls"] += record.calls_made
            tally["invocations"] += record.invocations_made
            if record.correct is not None:
                tally["graded"] += 1
                tally["correct"] += bool(record.correct)
            status = f"{tally['calls']} calls ({tally['invocations']} invocations)"
            if tally["graded"] and not participant:
                status += f" · {tally['correct']}/{tally['graded']} correct"
            progress.update(bar, advance=1, status=status)

        return await run_sweep(items, config, policies, out, call_cache, on_run=advance, on_plan=plan,
                               fail_fast=fail_fast, pool=pool, remake=remake)


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table(rows: list[Row], title: str, by_bucket: bool = False) -> Table:
    """The figures as a compact table; token and cost columns only when something was spent."""
    priced = any(row.tokens_mean for row in rows)
    view = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    budgeted = any(row.budget for row in rows)
    axis = "needs" if by_bucket else ("budget" if budgeted else "n")
    names = ["variant", axis, "qs", "acc", "95% CI", "acc*", "guess", "nodes", "calls",
             *(["spent"] if budgeted else []), "inv", "made", "inv made", "hits",
             *(["tokens", "cost"] if priced else []), "wall s"]
    for name in names:
        view.add_column(name, justify="left" if name == "variant" else "right", no_wrap=True)
    for row in rows:
        ci = "—" if row.ci_low is None else f"{row.ci_low:.2f}-{row.ci_high:.2f}"
        cells = [
            row.variant or str(row.votes), str(row.required_depth if by_bucket else row.point), str(row.questions),
            fmt(row.accuracy), ci, fmt(row.guess_free_accuracy),
            str(row.guesses), f"{row.nodes_mean:.1f}", f"{row.calls_mean:.1f}",
            *([f"{row.spent_mean or 0:.1f}"] if budgeted else []), f"{row.invocations_mean:.1f}",
            str(row.calls_made), str(row.invocations_made),
            str(row.cache_hits), *([f"{row.tokens_mean:.0f}", f"${row.cost_mean:.4f}"] if priced else []),
            f"{row.wall_mean:.3f}",
        ]
        view.add_row(*cells)
    return view


def spent_line(spent: dict[str, float | None]) -> str:
    """What the sweep spent against its budget, over every invocation."""
    parts = []
    if spent["max_cost"] is not None:
        parts.append(f"${spent['cost'] or 0:.4f} of ${spent['max_cost']:.4f}")
    if spent["max_total_tokens"] is not None:
        parts.append(f"{int(spent['tokens'] or 0):,} of {int(spent['max_total_tokens']):,} tokens")
    earlier = f"${spent['cost_before'] or 0:.4f}, {int(spent['tokens_before'] or 0):,} tokens"
    return f"sweep budget: spent {' · '.join(parts)} (before this invocation: {earlier})"


def report(outcome: Outcome, paths: dict[str, Path], policy: str, participant: bool = False) -> None:
    console = Console(highlight=False)
    if not console.is_terminal:  # a file or pipe: no need to squeeze the table into 80 columns
        console = Console(highlight=False, width=140)
    if outcome.spent is not None:
        console.print(spent_line(outcome.spent), markup=False)
    if outcome.not_run:
        print(f"hch: the sweep's budget is spent: {outcome.not_run} runs not made; raise --max-cost or "
              "--max-total-tokens and rerun the same command to make them", file=sys.stderr)
    if participant:  # whoever played H may be looking: no accuracy, no gold (the files have them)
        console.print(f"{outcome.ran} runs made, {outcome.resumed} resumed · figures withheld from the participant: "
                      f"see {plain(str(paths.get('summary', '')))}", markup=False)
        return
    rows = aggregate(outcome.records, policy=policy)
    axis = "budget" if any(r.budget for r in rows) else "depth"
    console.print(table(rows, f"by {axis}"))
    buckets = aggregate(outcome.records, by_bucket=True, policy=policy)
    if buckets:
        deepest = max(r.point for r in buckets)
        at = f"budget {deepest}" if axis == "budget" else f"n = {deepest}"
        console.print(table([r for r in buckets if r.point == deepest],
                            f"at {at}, by the depth a question needs (every {axis}: buckets.csv)", by_bucket=True))
    console.print("acc*: accuracy counting an answer with a guess behind it as wrong · 95% CI over instances · "
                  "nodes, calls, inv: means per question as a standalone run would make them (inv: policy "
                  "invocations, a vote of k counts k) · made, inv made: calls and invocations this sweep made · "
                  "hits: call-cache hits and reused subtrees"
                  + (" · spent: calls charged to the budget (a reused subtree to every copy)"
                     if axis == "budget" else ""),
                  markup=False, style="dim")
    console.print(
        f"{outcome.ran} runs made, {outcome.resumed} resumed · {outcome.calls_made} policy calls "
        f"({outcome.invocations_made} invocations) · "
        f"{outcome.cross_depth_hits} subtrees reused across depths · {outcome.wall_time:.1f}s",
        markup=False,
    )
    for name, path in paths.items():
        console.print(f"{name}: {plain(str(path))}", markup=False)


# One seed per study: `--seed` (declared once, in `llm_options`) seeds the task generator too; the token
# and money budgets (declared in `limit_options`) are the whole sweep's.
_HELP = {
    "seed": "Seed of the task generator (default 0); with --policy llm also the sampling seed sent to the server.",
    "max_total_tokens": "Token budget of the whole sweep (all runs, resumed invocations included).",
    "max_cost": "Budget of the whole sweep in US dollars (all runs, resumed invocations included).",
}
for _param in sweep.params:
    if _param.name in _HELP and isinstance(_param, click.Option):
        _param.help = _HELP[_param.name or ""]
