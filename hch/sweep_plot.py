"""Plots of a sweep: accuracy (with 95% intervals) and cost against depth, as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from hch.files import write_with
from hch.sweep import Row


def label(votes: int) -> str:
    return "policy" if votes == 1 else f"vote:{votes}"


def plot_rows(rows: list[Row], buckets: list[Row], stem: Path, title: str) -> dict[str, Path]:
    """Draw accuracy and cost against depth per voting variant (and accuracy per required depth)."""
    variants = sorted({r.votes for r in rows})
    figure, axes = plt.subplots(2 if buckets else 1, 2, figsize=(11, 8.4 if buckets else 4.2), squeeze=False)
    accuracy, cost = axes[0][0], axes[0][1]
    for votes in variants:
        mine = [r for r in rows if r.votes == votes and r.accuracy is not None]
        if mine:
            depths = [r.depth for r in mine]
            accuracy.plot(depths, [r.accuracy for r in mine], marker="o", label=label(votes))
            accuracy.fill_between(depths, [r.ci_low or 0.0 for r in mine], [r.ci_high or 0.0 for r in mine], alpha=0.2)
        every = [r for r in rows if r.votes == votes]
        cost.plot([r.depth for r in every], [max(r.calls_mean, 1e-9) for r in every], marker="o", label=label(votes))
    accuracy.set(xlabel="depth n of HCH_n", ylabel="accuracy (95% Wilson interval)", ylim=(-0.02, 1.02),
                 title="accuracy against depth")
    cost.set(xlabel="depth n of HCH_n", ylabel="policy calls per question (mean)", yscale="log",
             title="cost against depth")
    if buckets:
        steps, compounding = axes[1][0], axes[1][1]
        first = variants[0]
        for bucket in sorted({r.required_depth for r in buckets if r.required_depth is not None}):
            mine = [r for r in buckets if r.votes == first and r.required_depth == bucket and r.accuracy is not None]
            steps.plot([r.depth for r in mine], [r.accuracy for r in mine], marker=".", label=f"needs {bucket}")
        steps.set(xlabel="depth n of HCH_n", ylabel="accuracy", ylim=(-0.02, 1.02),
                  title=f"by the depth a question needs ({label(first)})")
        deepest = max(r.depth for r in buckets)
        for votes in variants:
            mine = [r for r in buckets if r.votes == votes and r.depth == deepest and r.accuracy is not None]
            compounding.errorbar(
                [r.required_depth or 0 for r in mine], [r.accuracy for r in mine], marker="o", capsize=3,
                yerr=[[max(0.0, (r.accuracy or 0) - (r.ci_low or 0)) for r in mine],
                      [max(0.0, (r.ci_high or 0) - (r.accuracy or 0)) for r in mine]],
                label=label(votes),
            )
        compounding.set(xlabel="depth the question needs", ylabel="accuracy", ylim=(-0.02, 1.02),
                        title=f"at n = {deepest}, by the depth a question needs")
    for axis in [a for row in axes for a in row]:
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # depths are whole numbers
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="x-small", ncol=2)
    if not any(r.accuracy is not None for r in rows):
        accuracy.text(0.5, 0.5, "no gold answers: cost and time only", ha="center", transform=accuracy.transAxes)
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    paths = {"png": stem.with_suffix(".png"), "svg": stem.with_suffix(".svg")}
    write_with(paths["png"], lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    with plt.rc_context({"svg.hashsalt": "hch"}):  # fixed element ids and no date: reruns give the same file
        write_with(paths["svg"], lambda tmp: figure.savefig(tmp, metadata={"Date": None}, format="svg"))
    plt.close(figure)
    return paths
