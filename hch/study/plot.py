"""Plots of a sweep, as PNG and SVG: what is drawn is first laid out as `Panel`s of `Series`.

Panels: accuracy against depth (solid, with its 95% interval over instances) and guess-free
accuracy (dashed, an answer resting on a guess counted wrong); policy invocations per question
(a vote of k counts k); tokens and dollars per question when anything was spent; for every
variant, accuracy against depth by the depth a question needs; and, at the deepest n, accuracy
by the depth a question needs.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hch.files import write_with
from hch.study.rows import Row

DEPTH = "depth n of HCH_n"
BUDGET = "budget: policy calls per run"


def axis_of(rows: list[Row]) -> str:
    """The x label of a sweep's panels: budget for a sweep over budget (rows then sit at `Row.point`)."""
    return BUDGET if any(r.budget for r in rows) else DEPTH


@dataclass
class Series:
    """One line of a panel."""

    label: str
    x: list[int]
    y: list[float]
    low: list[float] | None = None
    """Lower ends of the 95% intervals (drawn as a band or error bars), if any."""
    high: list[float] | None = None
    dashed: bool = False
    bars: bool = False
    """Error bars instead of a band."""
    colour: int = 0
    """Index into the colour cycle (the variant's), so a variant keeps its colour across panels."""


@dataclass
class Panel:
    """One set of axes."""

    key: str
    """accuracy, invocations, tokens, cost, needs:VARIANT or compounding."""
    title: str
    xlabel: str
    ylabel: str
    series: list[Series] = field(default_factory=list)
    log: bool = False
    """A log y axis (costs)."""
    share: bool = False
    """A y axis from 0 to 1 (accuracies)."""
    note: str = ""
    """Text in the middle of the axes, e.g. why nothing is drawn."""


def panels(rows: list[Row], buckets: list[Row]) -> list[Panel]:
    """Everything the plot draws, from a sweep's rows and bucket rows."""
    variants = sorted({r.votes for r in rows})
    names = {r.votes: r.variant or str(r.votes) for r in rows}
    drawn = [accuracy_panel(rows, variants, names), cost_panel(rows, variants, names, "invocations")]
    drawn += [cost_panel(rows, variants, names, key) for key in ("tokens", "cost")
              if any(getattr(r, f"{key}_mean") for r in rows)]
    if buckets:
        drawn += [needs_panel(buckets, votes, names[votes]) for votes in variants]
        drawn.append(compounding_panel(buckets, variants, names))
    return drawn


def accuracy_panel(rows: list[Row], variants: list[int], names: dict[int, str]) -> Panel:
    panel = Panel("accuracy", f"accuracy against {axis_of(rows).split(':')[0].split()[0]}", axis_of(rows),
                  "accuracy (95% interval over instances)", share=True)
    for colour, votes in enumerate(variants):
        mine = [r for r in rows if r.votes == votes and r.accuracy is not None]
        if not mine:
            continue
        depths = [r.point for r in mine]
        panel.series.append(Series(names[votes], depths, [r.accuracy or 0.0 for r in mine],
                                   [r.ci_low or 0.0 for r in mine], [r.ci_high or 0.0 for r in mine], colour=colour))
        panel.series.append(Series(f"{names[votes]}, guess-free", depths, [r.guess_free_accuracy or 0.0 for r in mine],
                                   dashed=True, colour=colour))
    if not panel.series:
        panel.note = "no gold answers: cost and time only"
    return panel


COSTS = {
    "invocations": ("policy invocations", "invocations per question (mean; a vote of k is k)", "invocations_mean"),
    "tokens": ("tokens", "tokens per question (mean)", "tokens_mean"),
    "cost": ("dollars", "US dollars per question (mean)", "cost_mean"),
}


def cost_panel(rows: list[Row], variants: list[int], names: dict[int, str], key: str) -> Panel:
    what, ylabel, attribute = COSTS[key]
    panel = Panel(key, f"{what} against {axis_of(rows).split(':')[0].split()[0]}", axis_of(rows), ylabel, log=True)
    for colour, votes in enumerate(variants):
        mine = [r for r in rows if r.votes == votes]
        panel.series.append(Series(names[votes], [r.point for r in mine],
                                   [float(getattr(r, attribute)) for r in mine], colour=colour))
    return panel


def needs_panel(buckets: list[Row], votes: int, name: str) -> Panel:
    panel = Panel(f"needs:{name}", f"by the depth a question needs ({name})", axis_of(buckets), "accuracy", share=True)
    for colour, bucket in enumerate(sorted({r.required_depth for r in buckets if r.required_depth is not None})):
        mine = [r for r in buckets if r.votes == votes and r.required_depth == bucket and r.accuracy is not None]
        if mine:
            panel.series.append(Series(f"needs {bucket}", [r.point for r in mine], [r.accuracy or 0.0 for r in mine],
                                       colour=colour))
    return panel


def compounding_panel(buckets: list[Row], variants: list[int], names: dict[int, str]) -> Panel:
    deepest = max(r.point for r in buckets)
    where = f"budget {deepest}" if axis_of(buckets) == BUDGET else f"n = {deepest}"
    panel = Panel("compounding", f"at {where}, by the depth a question needs", "depth the question needs",
                  "accuracy (95% interval over instances)", share=True)
    for colour, votes in enumerate(variants):
        mine = [r for r in buckets if r.votes == votes and r.point == deepest and r.accuracy is not None]
        if mine:
            panel.series.append(Series(
                names[votes], [r.required_depth or 0 for r in mine], [r.accuracy or 0.0 for r in mine],
                [r.ci_low or 0.0 for r in mine], [r.ci_high or 0.0 for r in mine], bars=True, colour=colour))
    return panel


def render(drawn: list[Panel], title: str) -> Figure:
    """A figure with one set of axes per panel, up to three a row (unused axes hidden)."""
    columns = 2 if len(drawn) <= 4 else 3
    lines = math.ceil(len(drawn) / columns)
    figure, grid = plt.subplots(lines, columns, figsize=(5.5 * columns, 4.2 * lines), squeeze=False)
    axes = [a for row in grid for a in row]
    for panel, axis in zip(drawn, axes, strict=False):
        draw(panel, axis)
    for axis in axes[len(drawn):]:
        axis.set_visible(False)
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    return figure


def draw(panel: Panel, axis: Axes) -> None:
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for series in panel.series:
        colour = colours[series.colour % len(colours)]
        if series.bars and series.low is not None and series.high is not None:
            below = [max(0.0, y - lo) for y, lo in zip(series.y, series.low, strict=True)]
            above = [max(0.0, hi - y) for y, hi in zip(series.y, series.high, strict=True)]
            axis.errorbar(series.x, series.y, yerr=[below, above], marker="o", capsize=3, label=series.label,
                          color=colour)
            continue
        axis.plot(series.x, series.y, marker="." if series.dashed else "o", linestyle="--" if series.dashed else "-",
                  label=series.label, color=colour)
        if series.low is not None and series.high is not None:
            axis.fill_between(series.x, series.low, series.high, alpha=0.2, color=colour)
    axis.set(xlabel=panel.xlabel, ylabel=panel.ylabel)
    axis.set_title("\n".join(textwrap.wrap(panel.title, 46)))  # a long spec wraps instead of running off
    if panel.share:
        axis.set_ylim(-0.02, 1.02)
    if panel.log and any(y > 0 for s in panel.series for y in s.y):
        axis.set_yscale("log")
    axis.grid(alpha=0.3)
    if panel.xlabel == BUDGET:
        axis.set_xscale("log")  # budgets grow by factors
    else:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # depths are whole numbers
    if panel.series:
        axis.legend(fontsize="x-small", ncol=2)
    if panel.note:
        axis.text(0.5, 0.5, panel.note, ha="center", transform=axis.transAxes)


def save(figure: Figure, stem: Path) -> dict[str, Path]:
    """Write `stem`.png and `stem`.svg and close the figure."""
    paths = {"png": stem.with_suffix(".png"), "svg": stem.with_suffix(".svg")}
    write_with(paths["png"], lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    with plt.rc_context({"svg.hashsalt": "hch"}):  # fixed element ids and no date: reruns give the same file
        write_with(paths["svg"], lambda tmp: figure.savefig(tmp, metadata={"Date": None}, format="svg"))
    plt.close(figure)
    return paths


def plot_rows(rows: list[Row], buckets: list[Row], stem: Path, title: str) -> dict[str, Path]:
    """Draw a sweep's panels and write them as `stem`.png and `stem`.svg."""
    return save(render(panels(rows, buckets), title), stem)
