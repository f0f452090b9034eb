"""A sweep's report files: summary.csv, buckets.csv, sweep.json and the plot."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hch.errors import read_text
from hch.files import write_atomic
from hch.study.plot import plot_rows
from hch.study.rows import aggregate, write_csv
from hch.study.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from hch.study.sweep import CONFIG_FILE, Outcome, SweepConfig, SweepError, versions

INTERVALS = {
    "level": 0.95,
    "over": "instances (a question without an instance is its own)",
    "methods": {
        "wilson": "Wilson score interval: every question its own instance",
        "bootstrap": "percentile bootstrap resampling whole instances",
        "wilson-instances": "under 5 instances, or all right or all wrong: Wilson with each instance one trial",
    },
    "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
    "bootstrap_seed": BOOTSTRAP_SEED,
}
"""How the intervals were taken, written into sweep.json."""


def write_outputs(out: Path, config: SweepConfig, outcome: Outcome, plot: bool = True) -> dict[str, Path]:
    """summary.csv, buckets.csv, sweep.json and (unless `plot` is False) plot.png / plot.svg."""
    rows = aggregate(outcome.records, policy=config.policy)
    buckets = aggregate(outcome.records, by_bucket=True, policy=config.policy)
    paths = {"summary": out / "summary.csv", "buckets": out / "buckets.csv", "json": out / "sweep.json"}
    write_csv(rows, paths["summary"])
    write_csv(buckets, paths["buckets"])
    saved = json.loads(read_text(out / CONFIG_FILE, "sweep configuration", SweepError))
    payload = {
        "format": "hch-sweep", "schema_version": 1, "created": datetime.now(UTC).isoformat(),
        "config": saved, "versions": versions(), "intervals": INTERVALS,
        "totals": {
            "runs": len(outcome.records), "resumed": outcome.resumed, "ran": outcome.ran,
            "calls_made": sum(r.calls_made for r in outcome.records),
            "invocations_made": sum(r.invocations_made for r in outcome.records),
            "calls_made_this_invocation": outcome.calls_made,
            "invocations_made_this_invocation": outcome.invocations_made,
            "cross_depth_hits": outcome.cross_depth_hits, "wall_time": outcome.wall_time,
            "not_run": outcome.not_run, "budget": outcome.spent,
        },
        "rows": [r.model_dump() for r in rows], "buckets": [r.model_dump() for r in buckets],
    }
    write_atomic(paths["json"], json.dumps(payload, indent=2))
    if plot:
        title = f"{config.task or Path(config.source).name} · {config.policy} · {len(outcome.records)} runs"
        title += " · facts hidden" if config.facts == "hidden" else ""
        paths.update(plot_rows(rows, buckets, out / "plot", title))
    return paths
