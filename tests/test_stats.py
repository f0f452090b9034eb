from __future__ import annotations

import pytest

from hch.stats import mean, median, wilson


def test_wilson_matches_published_values() -> None:
    # Newcombe (1998), Table I: 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605
    assert wilson(81, 263) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))
    assert wilson(15, 148) == (pytest.approx(0.0624, abs=1e-4), pytest.approx(0.1605, abs=1e-4))


def test_wilson_edges() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(10, 10)
    assert high == pytest.approx(1.0) and 0.69 < low < 0.73
    low, high = wilson(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and 0.27 < high < 0.31


def test_mean_and_median_of_nothing_are_zero() -> None:
    assert (mean([]), median([])) == (0.0, 0.0)
    assert (mean([1, 2, 6]), median([1, 2, 6])) == (3.0, 2.0)


def test_the_bootstrap_resamples_whole_groups() -> None:
    from hch.stats import bootstrap_groups

    assert bootstrap_groups([]) == (0.0, 1.0)
    assert bootstrap_groups([("a", True), ("b", True)] * 5) == (1.0, 1.0)
    # two instances, one all right and one all wrong: resampling instances spans 0..1, unlike questions
    split = [("a", True)] * 50 + [("b", False)] * 50
    assert bootstrap_groups(split, seed=1) == (0.0, 1.0)
    many = [(f"i{n}", n % 4 != 0) for n in range(200)]
    low, high = bootstrap_groups(many, seed=2)
    assert low < 0.75 < high and high - low < 0.15
    assert bootstrap_groups(many, seed=2) == (low, high)
