"""Small statistics for study reports."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def bootstrap_groups(
    outcomes: Sequence[tuple[str, bool]], seed: int = 0, resamples: int = 2000, level: float = 0.95
) -> tuple[float, float]:
    """A percentile bootstrap interval of a proportion, resampling whole groups (e.g. task instances).

    `outcomes` are (group, success) pairs; questions of one group are not independent, so the groups
    are what is drawn with replacement. (0, 1) when there are no outcomes."""
    if not outcomes:
        return 0.0, 1.0
    groups: dict[str, list[int]] = {}
    for group, success in outcomes:
        groups.setdefault(group, [0, 0])
        groups[group][0] += success
        groups[group][1] += 1
    tallies = list(groups.values())
    rng = random.Random(seed)
    rates = sorted(
        sum(t[0] for t in drawn) / sum(t[1] for t in drawn)
        for drawn in (rng.choices(tallies, k=len(tallies)) for _ in range(resamples))
    )
    tail = (1 - level) / 2
    return rates[int(tail * (resamples - 1))], rates[int((1 - tail) * (resamples - 1))]
