from __future__ import annotations

from pathlib import Path

import pytest

from hch.errors import HchError
from hch.experts import ExpertPolicy
from hch.study.estimate import estimate_rows
from hch.study.question_set import Item
from hch.study.sweep import SweepConfig, run_sweep

ITEMS = [
    Item(id="pair", question="What is the sum of 7, 8?"),  # 1 call at any depth
    Item(id="four", question="What is the sum of 1, 2, 3, 10?"),  # 4 calls at depth >= 1, a guess at 0
    Item(id="four2", question="What is the sum of 5, 6, 7, 8?"),
]


def config() -> SweepConfig:
    return SweepConfig(source="test", questions=0, depths=[0, 1], policy="expert")


@pytest.mark.anyio
async def test_the_estimate_comes_from_the_pilot_runs_and_covers_only_the_runs_left(tmp_path: Path) -> None:
    policies = {1: ExpertPolicy()}
    assert [r.basis for r in estimate_rows(ITEMS, config(), policies, tmp_path)] == [0, 0]  # nothing to go by
    outcome = await run_sweep(ITEMS, config(), policies, tmp_path, pilot=2)
    assert sorted((r.id, r.depth) for r in outcome.records) == [("four", 0), ("four", 1), ("pair", 0), ("pair", 1)]
    zero, one = estimate_rows(ITEMS, config(), policies, tmp_path)
    assert (zero.depth, zero.runs, zero.basis, zero.calls_per_run, zero.calls) == (0, 1, 2, 1.0, 1.0)
    assert (one.depth, one.runs, one.basis, one.calls_per_run, one.calls) == (1, 1, 2, 2.5, 2.5)
    assert (one.tokens, one.cost) == (0.0, 0.0)  # the offline expert spends nothing


@pytest.mark.anyio
async def test_no_estimate_from_a_directory_holding_another_sweep(tmp_path: Path) -> None:
    await run_sweep(ITEMS, config(), {1: ExpertPolicy()}, tmp_path, pilot=1)
    with pytest.raises(HchError, match="holds a different sweep"):
        estimate_rows(ITEMS[:2], config(), {1: ExpertPolicy()}, tmp_path)
