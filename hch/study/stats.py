"""Small statistics for study reports: proportions with 95% intervals that respect instances.

Questions drawn from one task instance share its facts, so their outcomes are not independent
draws: ten questions of one instance tell less than ten questions of ten instances. The interval
of an accuracy is therefore taken over instances (`interval`):

- every question its own instance (files without instances, or one question per instance): the
  Wilson score interval of the proportion;
- otherwise, from `MIN_BOOTSTRAP_INSTANCES` instances on, a percentile bootstrap over instances
  (`BOOTSTRAP_RESAMPLES` resamples of the instances with replacement, each taking all its
  questions; seeded, so reruns give the same interval);
- with fewer instances, or when every question was right (or every one wrong), a bootstrap
  collapses towards a point (one instance resampled is always itself), so the interval is
  Wilson's with each instance counted as one trial (the accuracy times k successes of k): the
  worst case, where questions of one instance always fare alike; wider than Wilson over the
  questions.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 2000
"""Resamples of the instance bootstrap."""
BOOTSTRAP_SEED = 0
"""Seed of the instance bootstrap: the same outcomes give the same interval."""
MIN_BOOTSTRAP_INSTANCES = 5
"""Fewer instances than this get the per-instance Wilson interval instead of a bootstrap."""

Method = Literal["wilson", "bootstrap", "wilson-instances"]


def wilson(successes: float, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) when there are no trials.

    `successes` may be fractional (an effective count: see `interval`)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(groups: Sequence[tuple[int, int]], seed: int = BOOTSTRAP_SEED,
              resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of sum(successes) / sum(trials), resampling whole groups.

    `groups` holds (successes, trials) per group (an instance); every group needs a trial.
    """
    if not groups or any(trials < 1 for _, trials in groups):
        raise ValueError("a bootstrap needs at least one group, and at least one trial in each")
    successes = np.array([s for s, _ in groups], dtype=float)
    trials = np.array([t for _, t in groups], dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(groups), size=(resamples, len(groups)))
    ratios = successes[picks].sum(axis=1) / trials[picks].sum(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return float(low), float(high)


def interval(outcomes: Sequence[tuple[Hashable, bool]], seed: int = BOOTSTRAP_SEED) -> tuple[float, float, Method]:
    """95% interval of the share of True among (instance, outcome) pairs, and how it was taken.

    See the module docstring for the three cases; no outcomes at all give (0, 1) by Wilson.
    """
    groups: dict[Hashable, list[int]] = {}
    for instance, ok in outcomes:
        groups.setdefault(instance, [0, 0])
        groups[instance][0] += int(ok)
        groups[instance][1] += 1
    successes, trials = sum(s for s, _ in groups.values()), len(outcomes)
    if all(t == 1 for _, t in groups.values()):
        return (*wilson(successes, trials), "wilson")
    if len(groups) < MIN_BOOTSTRAP_INSTANCES or successes in (0, trials):
        return (*wilson(len(groups) * successes / trials, len(groups)), "wilson-instances")
    return (*bootstrap([(s, t) for s, t in groups.values()], seed), "bootstrap")


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0
