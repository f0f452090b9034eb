"""An IDA round's Amp runs on a pool of workers (`hch.study.workers`): the training questions in chunks.

Each job runs its chunk's Amp(X_t) runs as `label_round` does in one process (`concurrency` at a time)
and returns their records; the parent writes `labels.jsonl` as jobs finish, and, from Ray workers, the traces.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from hch.files import write_atomic
from hch.learning.learner import LearnedPolicy
from hch.run.call_cache import CallCache
from hch.run.policy import Policy
from hch.study.question_set import Item
from hch.study.sweep_jobs import collect_files, inside
from hch.study.workers import Env, Pool, worker_cache


@dataclass(frozen=True)
class AmpJob:
    """Some training questions of round `t`, and what a worker needs to label them."""

    round: int
    items: list[Item]
    h: Policy | None
    """H (pickled), or None: `remake_h` makes it."""
    remake_h: Callable[[], Policy] | None
    x: LearnedPolicy
    depth: int
    max_steps: int
    concurrency: int
    out: str
    """The study's directory (local workers write into it); empty: a directory of the worker's own (Ray)."""
    env: Env


@dataclass
class AmpJobResult:
    runs: list[object]
    """The chunk's `AmpRun` records, in the order they finished."""
    files: dict[str, bytes] = field(default_factory=dict)


def amp_job(job: AmpJob) -> AmpJobResult:
    """A worker's side of one job."""
    from hch.learning.ida import amp_run, amplified  # ida imports this module's caller, not this module

    out = Path(job.out) if job.out else Path(tempfile.mkdtemp(prefix="hch-ida-"))
    h = job.h if job.h is not None else job.remake_h() if job.remake_h is not None else None
    assert h is not None, "a job carries H or a function that makes it"
    policy = amplified(h, job.x)
    cache = worker_cache(job.env)
    runs: list[object] = []

    async def main() -> None:
        limiter = anyio.CapacityLimiter(job.concurrency)

        async def one(item: Item) -> None:
            async with limiter:
                runs.append(await amp_run(item, job.round, job.depth, job.max_steps, policy, job.x, cache, out))

        async with anyio.create_task_group() as group:
            for item in job.items:
                group.start_soon(one, item)

    try:
        anyio.run(main)
        return AmpJobResult(runs, collect_files(out, set()) if not job.out else {})
    finally:
        if cache is not None:
            cache.flush()
        if not job.out:
            shutil.rmtree(out, ignore_errors=True)


async def label_on_pool(pool: Pool, todo: list[Item], t: int, h: Policy, remake_h: Callable[[], Policy] | None,
                        x: LearnedPolicy, depth: int, max_steps: int, concurrency: int, out: Path,
                        cache: CallCache | None, take: Callable[[object], None]) -> None:
    """Label `todo` on `pool`, giving each `AmpRun` to `take` here as its job finishes."""
    env = pool.open(cache, None)
    size = max(1, min(concurrency, -(-len(todo) // (pool.workers * 4))))  # small chunks: the workers stay busy
    jobs = [AmpJob(t, todo[i:i + size], None if remake_h else h, remake_h, x, depth, max_steps, concurrency,
                   "" if pool.ships else str(out), env) for i in range(0, len(todo), size)]

    def arrived(result: AmpJobResult) -> None:
        for name, data in result.files.items():
            write_atomic(inside(out, name), data)
        for run in result.runs:
            take(run)

    try:
        await pool.run(amp_job, jobs, arrived)
    finally:
        pool.release()
