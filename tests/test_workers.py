from __future__ import annotations

import os

import pytest
from pool_helpers import die, double, fail, spend

from hch.run.budget import SharedBudget
from hch.study.ray_workers import RayPool
from hch.study.workers import MAX_WORKERS, Groups, LocalPool, WorkersError, cores, make_pool, parse_workers

pytestmark = pytest.mark.anyio


BAD = ["0", "-1", "nan", "inf", "1e3", "2.5", "", " ", "²", "9" * 5000, str(MAX_WORKERS + 1)]


@pytest.mark.parametrize("text", BAD)
def test_a_number_of_workers_is_a_whole_number_from_one_to_the_most(text: str) -> None:
    with pytest.raises(ValueError, match=f"is not a number of workers: give a whole number from 1 to {MAX_WORKERS}"):
        parse_workers(text)


def test_auto_is_every_core_and_one_worker_is_this_process() -> None:
    assert parse_workers("auto") == parse_workers(" AUTO ") == min(cores(), MAX_WORKERS)
    assert parse_workers("3") == 3
    assert make_pool(1, None) is None and make_pool(None, None) is None
    assert isinstance(make_pool(2, None), LocalPool) and isinstance(make_pool(None, "local"), RayPool)


def test_a_worker_keeps_to_its_group_then_takes_a_fresh_one_then_helps() -> None:
    jobs = ["a1", "b1", "a2", "c1", "b2", "a3"]
    groups = Groups(jobs, lambda job: job[0])
    assert [groups.next_for("w1"), groups.next_for("w2"), groups.next_for("w1")] == ["a1", "b1", "a2"]
    assert [groups.next_for("w2"), groups.next_for("w2"), groups.next_for("w2")] == ["b2", "c1", "a3"]
    assert not groups
    ungrouped = Groups([3, 1, 2], None)
    assert [ungrouped.next_for(0), ungrouped.next_for(1), ungrouped.next_for(0)] == [3, 1, 2]


async def test_local_workers_run_every_job_on_other_processes() -> None:
    pool = LocalPool(2)
    pool.open(None, None)
    results: list[tuple[int, int]] = []
    await pool.run(double, list(range(6)), results.append)
    pool.close()
    assert sorted(value for value, _ in results) == [0, 2, 4, 6, 8, 10]
    assert os.getpid() not in {pid for _, pid in results}


async def test_a_job_that_raises_stops_the_pool_with_its_error() -> None:
    pool = LocalPool(2)
    pool.open(None, None)
    with pytest.raises(ValueError, match="job 0 failed"):
        await pool.run(fail, [0], lambda _: None)
    assert pool._processes == []  # every worker stopped


async def test_a_worker_that_dies_is_one_line_not_a_hang() -> None:
    pool = LocalPool(1)
    pool.open(None, None)
    with pytest.raises(WorkersError, match="a worker process died before finishing its job"):
        await pool.run(die, [0], lambda _: None)


async def test_workers_share_one_budget() -> None:
    pool = LocalPool(2)
    env = pool.open(None, SharedBudget(max_total_tokens=1000, tokens=7, cost=1.0))
    seen: list[tuple[int, float]] = []
    await pool.run(spend, [env, env, env], seen.append)
    assert pool.spent() == (7 + 3 * 50, pytest.approx(1.0 + 3 * 5.0))
    assert max(seen) == pool.spent()  # the last job to finish saw every worker's spend
    pool.close()
