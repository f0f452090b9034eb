from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

import hch
from hch.run.collector import THRESHOLDS, paced


@pytest.fixture(autouse=True)
def keep_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_thresholds_are_raised_while_runs_overlap_and_restored_when_the_last_ends() -> None:
    first, second = paced(), paced()
    first.__enter__()
    assert gc.get_threshold() == THRESHOLDS
    second.__enter__()
    first.__exit__(None, None, None)  # runs may end in any order
    assert gc.get_threshold() == THRESHOLDS
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_thresholds_are_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), paced():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_higher_application_thresholds_are_kept_and_a_change_during_the_run_wins() -> None:
    gc.set_threshold(100_000, 5, 1000)
    with paced():
        assert gc.get_threshold() == (100_000, 50, 1000)
        gc.set_threshold(1234, 5, 6)
    assert gc.get_threshold() == (1234, 5, 6)


def test_collection_switched_off_by_a_zero_threshold_stays_off() -> None:
    gc.set_threshold(0)
    with paced():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0


def test_a_run_paces_the_collector_only_while_it_goes() -> None:
    seen: list[tuple[int, ...]] = []

    class Spy:
        fingerprint = "spy"

        async def act(self, workspace: hch.Workspace) -> hch.Answer:
            seen.append(gc.get_threshold())
            return hch.Answer(answer="done")

    hch.answer_sync("q", depth=0, policy=Spy())
    assert seen == [THRESHOLDS]
    assert gc.get_threshold() == (700, 10, 10)
