"""An IDA study's figures: intervals that resample instances."""

from __future__ import annotations

from hch.learning.ida import Evaluation
from hch.learning.report import bootstrap_groups, interval


def test_the_bootstrap_resamples_whole_instances() -> None:
    assert bootstrap_groups([]) == (0.0, 1.0)
    assert bootstrap_groups([("a", True), ("b", True)] * 5) == (1.0, 1.0)
    # two instances, one all right and one all wrong: resampling instances spans 0..1, unlike questions
    assert bootstrap_groups([("a", True)] * 50 + [("b", False)] * 50, seed=1) == (0.0, 1.0)
    many = [(f"i{n}", n % 4 != 0) for n in range(200)]
    low, high = bootstrap_groups(many, seed=2)
    assert low < 0.75 < high and high - low < 0.15
    assert bootstrap_groups(many, seed=2) == (low, high)


def test_fewer_than_five_instances_get_wilson_over_questions() -> None:
    def records(instances: int) -> list[Evaluation]:
        return [Evaluation(id=f"q{n}", instance=f"i{n % instances}", required_depth=0, answer="x", known=True,
                           correct=n % 3 != 0) for n in range(60)]

    assert interval(records(1), seed=0)[2] == "wilson"
    assert interval(records(6), seed=0)[2] == "bootstrap/6"
