"""An IDA study's figures: accuracy per round, learner kind and required depth, with intervals and
costs; written as CSV, JSON and plots (accuracy by round and class; amplification vs supervised)."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from hch.files import write_atomic, write_with
from hch.learning.ida import Evaluation, Kind, Study
from hch.study.stats import wilson

MIN_GROUPS = 5
"""Below this many instances, intervals are Wilson intervals over questions (a bootstrap over two
instances would be meaningless)."""


class IdaRow(BaseModel):
    """X_t (amplification) or S_t (supervised) on the evaluation questions of one class, or all."""

    kind: str
    """`amplification` (labels from Amp(X)) or `supervised` (gold labels)."""
    round: int
    """t of X_t: the model fitted after t rounds of labelling."""
    required_depth: int | None
    """The class (depth the question needs, facts hidden); None for all questions."""
    questions: int
    """Evaluation questions in the row."""
    correct: int
    """Of them answered correctly."""
    accuracy: float
    """correct / questions."""
    ci_low: float
    """Lower end of the 95% interval."""
    ci_high: float
    """Upper end of the 95% interval."""
    ci_method: str
    """`bootstrap/N` (resampling N instances) or `wilson` (fewer than 5 instances)."""
    guesses: int
    """Answers the model marked as guesses (inputs a table never saw)."""
    labels: int
    """Training examples the model was fitted on."""
    amp_runs: int
    """Amp runs made to label the data of this and earlier rounds (0 for supervised)."""
    h_calls: int
    """H's calls in those Amp runs, as standalone runs would make them (0 for supervised)."""
    h_calls_made: int
    """H's calls this study actually made for them (after the call cache)."""
    fit_seconds: float
    """Wall time of this model's fit."""
    eval_in_training: int
    """Evaluation questions (of this class) that are also training questions."""


def bootstrap_groups(
    outcomes: list[tuple[str, bool]], seed: int = 0, resamples: int = 2000, level: float = 0.95
) -> tuple[float, float]:
    """A percentile bootstrap interval of a proportion, resampling whole groups (task instances).

    Questions of one instance are not independent, so instances are what is drawn with replacement.
    (Owner C's `hch.study.stats.interval` does the same for sweeps; this one can defer to it once merged.)"""
    if not outcomes:
        return 0.0, 1.0
    groups: dict[str, list[int]] = {}
    for group, success in outcomes:
        tally = groups.setdefault(group, [0, 0])
        tally[0] += success
        tally[1] += 1
    tallies = list(groups.values())
    rng = random.Random(seed)
    rates = sorted(
        sum(t[0] for t in drawn) / sum(t[1] for t in drawn)
        for drawn in (rng.choices(tallies, k=len(tallies)) for _ in range(resamples))
    )
    tail = (1 - level) / 2
    return rates[int(tail * (resamples - 1))], rates[int((1 - tail) * (resamples - 1))]


def interval(records: list[Evaluation], seed: int) -> tuple[float, float, str]:
    instances = {r.instance for r in records}
    if len(instances) >= MIN_GROUPS:
        low, high = bootstrap_groups([(r.instance, r.correct) for r in records], seed=seed)
        return low, high, f"bootstrap/{len(instances)}"
    low, high = wilson(sum(r.correct for r in records), len(records))
    return low, high, "wilson"


def rows(study: Study) -> list[IdaRow]:
    """Every (kind, round) over all questions and per class."""
    trained = {(item.question, item.context) for item in study.train}
    in_training = {item.id for item in study.evaluation if (item.question, item.context) in trained}
    out: list[IdaRow] = []
    for (kind, t), records in sorted(study.evaluations.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        runs = [run for r in range(t) for run in study.runs.get(r, [])] if kind == "amplification" else []
        fit = study.fits.get((kind, t))
        classes: list[int | None] = [None, *sorted({r.required_depth for r in records if r.required_depth is not None})]
        for depth in classes:
            mine = [r for r in records if depth is None or r.required_depth == depth]
            if not mine:
                continue
            low, high, method = interval(mine, study.config.seed)
            out.append(IdaRow(
                kind=kind, round=t, required_depth=depth, questions=len(mine), correct=sum(r.correct for r in mine),
                accuracy=sum(r.correct for r in mine) / len(mine), ci_low=low, ci_high=high, ci_method=method,
                guesses=sum(not r.known for r in mine), labels=fit.examples if fit else 0, amp_runs=len(runs),
                h_calls=sum(r.h_calls for r in runs), h_calls_made=sum(r.h_calls_made for r in runs),
                fit_seconds=round(fit.seconds, 3) if fit else 0.0,
                eval_in_training=sum(r.id in in_training for r in mine),
            ))
    return out


def write_outputs(study: Study, plot: bool = True) -> dict[str, Path]:
    """rounds.csv, ida.json and (unless `plot` is False) plot.png / plot.svg in the study directory."""
    from hch.study.sweep import versions

    table = rows(study)
    paths = {"csv": study.out / "rounds.csv", "json": study.out / "ida.json"}
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(IdaRow.model_fields))
    writer.writeheader()
    for row in table:
        writer.writerow({k: ("" if v is None else v) for k, v in row.model_dump().items()})
    write_atomic(paths["csv"], text.getvalue())
    runs = [run for r in sorted(study.runs) for run in study.runs[r]]
    payload = {
        "format": "hch-ida", "schema_version": 1, "created": datetime.now(UTC).isoformat(),
        "config": study.config.model_dump(), "versions": versions(),
        "totals": {
            "training_questions": len(study.train), "evaluation_questions": len(study.evaluation),
            "eval_in_training": study.eval_in_training,
            "training_instances": len({i.instance for i in study.train}),
            "evaluation_instances": len({i.instance for i in study.evaluation}),
            "amp_runs": len(runs), "h_calls": sum(r.h_calls for r in runs),
            "h_calls_made": sum(r.h_calls_made for r in runs),
            "fit_seconds": round(sum(f.seconds for f in study.fits.values()), 3),
        },
        "rows": [row.model_dump() for row in table],
    }
    write_atomic(paths["json"], json.dumps(payload, indent=2))
    if plot:
        paths.update(plot_rows(table, study.out / "plot", title(study)))
    return paths


def title(study: Study) -> str:
    c = study.config
    regime = f"{c.instances} instances, eval ∩ train {study.eval_in_training}" if c.instances else "held-out instances"
    return f"{c.task} · {c.learner} · {len(study.train)} training questions · {regime}"


def plot_rows(table: list[IdaRow], stem: Path, heading: str) -> dict[str, Path]:
    """Left: Amp-trained X_t per class by round; right: amplification against supervised (all classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    plt.rcParams["svg.hashsalt"] = "hch"
    figure, (by_class, versus) = plt.subplots(1, 2, figsize=(11, 4.4))
    amp = [r for r in table if r.kind == "amplification"]
    for depth in sorted({r.required_depth for r in amp if r.required_depth is not None}):
        mine = [r for r in amp if r.required_depth == depth]
        by_class.plot([r.round for r in mine], [r.accuracy for r in mine], marker="os^vDP*"[depth % 7],
                      markersize=9 - depth, label=f"needs {depth}")
    by_class.set(xlabel="round t (X_t)", ylabel="accuracy", ylim=(-0.02, 1.02),
                 title="X_t trained by amplification, by class")
    by_class.legend(fontsize="small")
    kinds: tuple[Kind, ...] = ("amplification", "supervised")
    styles = {"amplification": {"marker": "o", "linewidth": 2.5}, "supervised": {"marker": "s", "linestyle": "--"}}
    for kind in kinds:
        mine = [r for r in table if r.kind == kind and r.required_depth is None]
        if mine:
            rounds = [r.round for r in mine]
            versus.plot(rounds, [r.accuracy for r in mine], label=kind, **styles[kind])  # type: ignore[arg-type]
            versus.fill_between(rounds, [r.ci_low for r in mine], [r.ci_high for r in mine], alpha=0.2)
    versus.set(xlabel="round t (same number of labels)", ylabel="accuracy (95% interval)", ylim=(-0.02, 1.02),
               title="amplification vs supervised, all classes")
    versus.legend(fontsize="small")
    for axis in (by_class, versus):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    figure.suptitle(heading, fontsize="medium")
    figure.tight_layout()
    paths = {"png": stem.with_suffix(".png"), "svg": stem.with_suffix(".svg")}
    write_with(paths["png"], lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    write_with(paths["svg"], lambda tmp: figure.savefig(tmp, metadata={"Date": None}, format="svg"))
    plt.close(figure)
    return paths
