from __future__ import annotations

from pathlib import Path

import anyio

from hch.experts import ExpertPolicy
from hch.learning import TableLearner
from hch.learning.ida import IdaConfig, Study, run_ida
from hch.record import format as trace_format
from hch.run.call_cache import CallCache
from hch.study.workers import LocalPool, Pool

CONFIG = IdaConfig(task="permutation-powering", learner="table", rounds=1, questions=0, eval_questions=20,
                   instances=1, seed=3, max_depth=2)


def study(out: Path, pool: Pool | None) -> Study:
    cache = CallCache(out.with_suffix(".sqlite"))
    try:
        return anyio.run(lambda: run_ida(CONFIG, TableLearner(), ExpertPolicy(), out, cache, pool=pool))
    finally:
        cache.close()


def labels(out: Path, t: int) -> list[str]:
    return sorted((out / "rounds" / f"round-{t}" / "labels.jsonl").read_text().splitlines())


def test_two_workers_label_every_round_as_one_process_does(tmp_path: Path) -> None:
    here = study(tmp_path / "one", None)
    there = study(tmp_path / "two", LocalPool(2))
    assert there.runs == here.runs and there.evaluations == here.evaluations
    for t in range(CONFIG.rounds):
        assert labels(tmp_path / "two", t) == labels(tmp_path / "one", t)
    traces = [sorted(p.relative_to(tmp_path / d) for p in (tmp_path / d / "traces").rglob("*.json"))
              for d in ("one", "two")]
    assert traces[0] and traces[0] == traces[1]
    for name in traces[0]:
        one, two = (trace_format.load(tmp_path / d / name).meta for d in ("one", "two"))
        assert (one["answer"], one["status"]) == (two["answer"], two["status"])
    again = study(tmp_path / "two", LocalPool(2))  # resumed: every label is there, no job starts
    assert again.runs == here.runs
