from __future__ import annotations

import pytest

from hch.study.stats import bootstrap, interval, mean, median, wilson


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


def test_the_bootstrap_is_seeded() -> None:
    groups = [(1, 3), (2, 7), (5, 9), (4, 4), (0, 6), (3, 5), (6, 11), (2, 2)]
    assert bootstrap(groups) == bootstrap(groups)  # the default seed: the same interval every time
    assert bootstrap(groups, seed=1) != bootstrap(groups, seed=2)
    low, high = bootstrap(groups)
    assert low < 23 / 47 < high


def test_instances_not_questions_are_resampled() -> None:
    # 60 questions, 30 right, as 60 independent instances or as 6 instances of 10 (9, 1, 8, 2, 7
    # and 3 right): the clustered set says much less, so its interval is wider.
    independent = [(f"i{n}", n % 2 == 0) for n in range(60)]
    rights = (9, 1, 8, 2, 7, 3)
    clustered = [(f"c{i}", n < right) for i, right in enumerate(rights) for n in range(10)]
    low, high, method = interval(independent)
    assert method == "wilson" and (low, high) == wilson(30, 60)
    c_low, c_high, c_method = interval(clustered)
    assert c_method == "bootstrap" and c_high - c_low > high - low
    assert c_low < 0.5 < c_high
    # the same 60 outcomes as 30 instances of one right and one wrong: instances vary not at all
    paired = [(f"p{n // 2}", n % 2 == 0) for n in range(60)]
    assert interval(paired) == (pytest.approx(0.5), pytest.approx(0.5), "bootstrap")


def test_few_instances_count_each_as_one_trial() -> None:
    # two instances of ten (8 and 2 right): too few to resample; Wilson with 2 trials, 1 success
    clustered = [("a", n < 8) for n in range(10)] + [("b", n < 2) for n in range(10)]
    assert interval(clustered) == (*wilson(1, 2), "wilson-instances")
    one = [("a", n < 2) for n in range(10)]
    assert interval(one) == (*wilson(0.2, 1), "wilson-instances")
    assert interval(one)[1] - interval(one)[0] > 0.5


def test_ten_questions_of_one_instance_say_less_than_ten_independent_ones() -> None:
    one = [("same", n < 7) for n in range(10)] + [(f"o{n}", n < 7) for n in range(10)]
    spread = [(f"s{n}", n < 7) for n in range(10)] + [(f"o{n}", n < 7) for n in range(10)]
    low, high, _ = interval(one)
    s_low, s_high, _ = interval(spread)
    assert high - low > s_high - s_low


def test_all_right_counts_each_instance_as_one_trial() -> None:
    outcomes = [(f"i{n // 10}", True) for n in range(60)]  # 6 instances of 10
    low, high, method = interval(outcomes)
    assert method == "wilson-instances" and (low, high) == wilson(6, 6)
    assert low < wilson(60, 60)[0]  # wider than treating the 60 questions as independent
    assert interval([(f"i{n // 10}", False) for n in range(60)]) == (*wilson(0, 6), "wilson-instances")


def test_a_bootstrap_needs_groups_with_trials() -> None:
    with pytest.raises(ValueError, match="at least one group"):
        bootstrap([])
    with pytest.raises(ValueError, match="at least one trial"):
        bootstrap([(0, 0)])
