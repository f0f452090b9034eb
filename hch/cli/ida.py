"""`hch ida`: iterated distillation and amplification on a built-in task; figures, table, plots."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import anyio
import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hch.cli import app
from hch.cli.options import cache_options, llm_options, open_cache, policy_option
from hch.cli.params import NamedPath
from hch.cli.render import plain
from hch.cli.workers import open_pool, workers_options
from hch.learning import LEARNERS, Learner, make_learner
from hch.learning.ida import AmpRun, Fit, Hooks, IdaConfig, Study, run_ida
from hch.learning.report import IdaRow, rows, write_outputs
from hch.policies.spec import make_policy
from hch.study.workers import Pool
from hch.tasks import TASKS, get_task

STUDIES = Path("studies")


@app.command()
@click.option("--task", "-t", required=True, help=f"A built-in task: {', '.join(TASKS)}.")
@click.option("--rounds", "-r", type=click.IntRange(min=1, max=1000), default=5, show_default=True,
              help="Amplification rounds; X_0 .. X_R are evaluated.")
@click.option("--learner", "-l", type=click.Choice(LEARNERS), default="table", show_default=True,
              help="table (memorizer) or mlp (scikit-learn; pip install -e '.[train]').")
@click.option("--questions", "-n", type=click.IntRange(min=0, max=1_000_000), default=0, show_default=True,
              help="Training questions (mlp); with --instances a sample of the universe (0: all of it).")
@click.option("--eval-questions", type=click.IntRange(min=1, max=1_000_000), default=600, show_default=True,
              help="Evaluation questions.")
@click.option("--instances", "-k", type=click.IntRange(min=1, max=100_000),
              help="Universe of K instances, trained and evaluated on (default 1 for table, none for mlp: "
                   "mlp is evaluated on held-out instances).")
@click.option("--max-depth", type=click.IntRange(min=0, max=1000),
              help="Only questions needing at most this depth (facts hidden); default: all the task offers.")
@click.option("--depth", type=click.IntRange(min=1, max=100), default=1, show_default=True,
              help="Depth of Amp's tree: H above, X_t at depth 0.")
@click.option("--max-steps", type=click.IntRange(min=1, max=10_000), default=8, show_default=True,
              help="Steps of asking per H node.")
@click.option("--hidden", type=click.IntRange(min=1, max=100_000), default=128, show_default=True,
              help="mlp: hidden units (one layer).")
@click.option("--epochs", type=click.IntRange(min=1, max=100_000), default=40, show_default=True,
              help="mlp: passes over the data.")
@click.option("--no-supervised", is_flag=True, help="Skip the supervised baseline (gold labels).")
@click.option("--concurrency", "-j", type=click.IntRange(min=1, max=10_000), default=16, show_default=True,
              help="Amp runs in flight at once.")
@click.option("--out", "-o", type=NamedPath(file_okay=False, path_type=Path),
              help="Output directory (default: studies/ida-TASK-LEARNER-seedS); rerun the same command to resume.")
@click.option("--no-plot", is_flag=True, help="Skip the PNG/SVG plot.")
@policy_option
@cache_options
@llm_options
@workers_options
def ida(task: str, rounds: int, learner: str, questions: int, eval_questions: int, instances: int | None,
        max_depth: int | None, depth: int, max_steps: int, hidden: int, epochs: int, no_supervised: bool,
        concurrency: int, out: Path | None, no_plot: bool, policy: str, cache: Path, no_cache: bool,
        workers: int | None, ray_address: str | None, **flags: Any) -> None:
    """Iterated distillation and amplification: X_(t+1) imitates Amp(X_t), with facts hidden from H.

    Amp(X_t) is H at the root (--policy, default the honest expert) with its subquestions answered
    by X_t; no gold answer is used. X_t is evaluated against gold per required depth, next to the
    same learner trained on gold labels (as many as amplification kept).
    """
    seed = flags["seed"] if flags["seed"] is not None else 0
    chosen_task = get_task(task)
    name = chosen_task.name
    if chosen_task.oracle is None:  # facts hidden from H: only a task with facts and an environment will do
        with_facts = ", ".join(n for n, t in TASKS.items() if t.oracle is not None)
        raise click.BadParameter(f"task {name} has no facts to hide from H; IDA here hides them: give one of "
                                 f"{with_facts}", param_hint="--task")
    if learner == "table" and instances is None:
        instances = 1
    config = IdaConfig(
        task=name, learner=learner, rounds=rounds, questions=questions, eval_questions=eval_questions,
        instances=instances, seed=seed, max_depth=max_depth, depth=depth, max_steps=max_steps, policy=policy,
        supervised=not no_supervised, concurrency=concurrency,
    )
    h = make_policy(policy, flags)
    chosen = mlp(hidden, epochs, seed) if learner == "mlp" else make_learner(learner)
    out = out or STUDIES / f"ida-{name}-{learner}-seed{seed}"
    from hch.policies.human import has_human  # hch.policies.human imports hch.cli.render: not at module level

    pool = open_pool(workers, ray_address, has_human(h))
    remake_h = functools.partial(make_policy, policy, flags) if pool is not None else None
    call_cache = open_cache(cache, no_cache)
    console = Console(highlight=False, stderr=True)
    try:
        out.mkdir(parents=True, exist_ok=True)  # a folder that cannot be made: one line, before the bar is drawn
        study = anyio.run(lambda: with_progress(config, chosen, h, out, call_cache, console, pool, remake_h))
    except KeyboardInterrupt:
        print(f"hch: interrupted; finished work is kept in {plain(str(out))}: rerun the same command to resume",
              file=sys.stderr)
        sys.exit(130)
    finally:
        if pool is not None:
            pool.close()
        if call_cache is not None:
            call_cache.close()
    paths = write_outputs(study, plot=not no_plot)
    report(study, rows(study), paths)


def mlp(hidden: int, epochs: int, seed: int) -> Learner:
    from hch.learning.neural import MLPLearner

    return MLPLearner(hidden=hidden, epochs=epochs, seed=seed)


async def with_progress(config: IdaConfig, learner: Learner, h: Any, out: Path, call_cache: Any,
                        console: Console, pool: Pool | None = None, remake_h: Any = None) -> Study:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bars: dict[str, Any] = {}
        tally = {"h": 0, "ok": 0}

        def stage(description: str, total: int, done: int) -> None:
            if "current" in bars:
                progress.stop_task(bars["current"])  # its clock stops with it
            tally["h"] = tally["ok"] = 0
            note = f"{done} done before" if done else ""
            bars["current"] = progress.add_task(description, total=total, completed=done, status=note)

        def run(record: AmpRun) -> None:
            tally["h"] += record.h_calls_made
            tally["ok"] += record.status == "ok"
            progress.update(bars["current"], advance=1, status=f"{tally['h']} H calls · {tally['ok']} labels kept")

        def fitted(model: str, fit: Fit) -> None:
            progress.console.print(f"fitted {model} on {fit.examples} labels in {fit.seconds:.1f}s", markup=False)

        hooks = Hooks(stage=stage, run=run, fitted=fitted)
        return await run_ida(config, learner, h, out, call_cache, hooks, pool, remake_h)


def table(found: list[IdaRow], title: str) -> Table:
    view = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    classes = sorted({r.required_depth for r in found if r.required_depth is not None})
    for name in ["kind", "t", "labels", "H calls", "all", *(f"needs {c}" for c in classes), "fit s"]:
        view.add_column(name, justify="right", no_wrap=True)
    for kind, t in sorted({(r.kind, r.round) for r in found}):
        mine = {r.required_depth: r for r in found if (r.kind, r.round) == (kind, t)}
        overall = mine[None]
        cells = [f"{mine[c].accuracy:.2f}" if c in mine else "—" for c in classes]
        view.add_row(kind[:3], str(t), str(overall.labels), str(overall.h_calls),
                     f"{overall.accuracy:.2f} ({overall.ci_low:.2f}-{overall.ci_high:.2f})", *cells,
                     f"{overall.fit_seconds:.1f}")
    return view


def report(study: Study, found: list[IdaRow], paths: dict[str, Path]) -> None:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=140)
    c = study.config
    regime = (f"universe of {c.instances} instance(s): {study.eval_in_training} of {len(study.evaluation)} evaluation "
              "questions are also training questions" if c.instances else
              f"evaluation on held-out instances ({study.eval_in_training} evaluation questions seen in training)")
    console.print(table(found, f"{c.task} · learner {c.learner} · {len(study.train)} training questions · {regime}"),
                  markup=False)
    console.print("amp: X_t trained on Amp(X_(t-1))'s labels, no gold · sup: the same learner on gold labels of the "
                  "same questions · H calls: as standalone Amp runs would make them", markup=False, style="dim")
    for name, path in paths.items():
        console.print(f"{name}: {plain(str(path))}", markup=False)


for _param in ida.params:
    if _param.name == "seed" and isinstance(_param, click.Option):
        _param.help = "Seed of the question sets and the learner (default 0); with --policy llm also sampling."
