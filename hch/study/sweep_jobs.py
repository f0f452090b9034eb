"""A sweep's questions on a pool of workers (`hch.study.workers`): one job per question of one variant.

A job runs its question's depths in turn, deepest first, exactly as `run_sweep` does in one process,
with a subtree cache kept by the worker from one job to the next (so questions sharing a context,
e.g. one task instance's, still share subtrees when the same worker runs them; across workers the
shared call cache serves them) and primed with the finished runs a resumed sweep found. The parent
writes every record to `runs.jsonl` as jobs finish, and, from Ray workers, their traces.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import anyio

from hch.errors import HchError
from hch.files import write_atomic
from hch.record import format as trace_format
from hch.run.budget import SharedBudget
from hch.run.call_cache import CallCache
from hch.run.policy import Policy
from hch.study.sweep import Question, RunRecord, SweepConfig, run_question
from hch.study.sweep_cache import SweepCache
from hch.study.workers import Env, Pool, WorkersError, pickles, worker_budget, worker_cache, worker_state

Policies = dict[int, Policy] | Callable[[], dict[int, Policy]]


@dataclass(frozen=True)
class SweepJob:
    """One question of one variant, and everything a worker needs to run it as the parent would."""

    sweep: str
    """This sweep invocation's id: a worker keeps one subtree cache per invocation."""
    question: Question
    policies: Policies
    config: SweepConfig
    out: str
    """The output directory (local workers write into it; Ray workers write into one of their own)."""
    stable: frozenset[str]
    """Fingerprints of the depth-stable policy parts (their subtrees may move between depths)."""
    primers: tuple[str, ...]
    """Traces (relative to `out`) of finished runs that may serve this question's runs."""
    fail_fast: bool
    env: Env
    files: dict[str, bytes] = field(default_factory=dict)
    """Ray: the primers' files, shipped with the job."""


@dataclass
class SweepJobResult:
    records: list[RunRecord]
    """Every record the job made, finished or cut short, in order."""
    not_run: int
    cross_depth_hits: int
    files: dict[str, bytes]
    """Ray: the traces the job wrote, relative to the output directory."""
    failure: HchError | None = None
    """What stopped the job (`--fail-fast`, a policy that cannot work), raised by the parent."""


def sweep_job(job: SweepJob) -> SweepJobResult:
    """A worker's side of one job."""
    ships = not job.out
    out = Path(tempfile.mkdtemp(prefix="hch-sweep-")) if ships else Path(job.out)
    try:
        for name, data in job.files.items():
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return anyio.run(_run, job, out, ships)
    finally:
        if ships:
            shutil.rmtree(out, ignore_errors=True)


async def _run(job: SweepJob, out: Path, ships: bool) -> SweepJobResult:
    state = worker_state()
    if state.get("sweep") != job.sweep:  # a new sweep: forget the last one's subtrees and policies
        policies = job.policies() if callable(job.policies) else job.policies
        state.update(sweep=job.sweep, policies=policies, subtrees=SweepCache(set(job.stable)), primed=set())
    cache: SweepCache = state["subtrees"]
    for name in job.primers:
        if name not in state["primed"]:
            cache.prime(trace_format.load(out / name))
            state["primed"].add(name)
    hits = cache.cross_depth_hits
    records: list[RunRecord] = []
    failure: HchError | None = None
    call_cache = worker_cache(job.env)
    try:
        not_run = await run_question(job.question, state["policies"][job.question.votes], job.config, out,
                                     call_cache, cache, worker_budget(job.env), job.fail_fast, records.append)
    except HchError as exc:  # sent to the parent, which raises it: whole if it pickles, else its one line
        failure, not_run = exc if pickles(exc) else HchError(str(exc)), 0
    finally:
        if call_cache is not None:
            call_cache.flush()
    files = collect_files(out, set(job.files)) if ships else {}
    return SweepJobResult(records, not_run, cache.cross_depth_hits - hits, files, failure)


def collect_files(out: Path, skip: set[str]) -> dict[str, bytes]:
    """Every file under `out` but `skip`, by path relative to it."""
    found: dict[str, bytes] = {}
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if path.is_file() and name not in skip:
            found[name] = path.read_bytes()
    return found


def _files_of(out: Path, name: str) -> dict[str, bytes]:
    """A finished run's trace files: the file itself, or every file under it if it is a folder."""
    path = out / name
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in paths}


def inside(out: Path, name: str) -> Path:
    """`out / name`, refusing a name that would leave `out` (files shipped back by a worker)."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
        raise WorkersError(f"a worker sent back a file outside the output directory: {name!r}")
    return out.joinpath(*parts)


async def on_pool(pool: Pool, questions: list[Question], config: SweepConfig, policies: Policies, out: Path,
                  call_cache: CallCache | None, budget: SharedBudget | None, fail_fast: bool,
                  emit: Callable[[RunRecord], None], stable: dict[int, set[str]],
                  primers: list[RunRecord]) -> tuple[int, int]:
    """Run `questions` on `pool`, emitting every record here; returns (runs not made, cross-depth hits)."""
    env = pool.open(call_cache, budget)
    every = frozenset(set().union(*stable.values()))
    context_of = {q.item.id: q.item.context for q in questions}
    serving: dict[tuple[int, str], list[str]] = {}
    for record in primers:
        context = context_of.get(record.id)
        serving.setdefault((record.votes, context if context is not None else ""), []).append(record.trace)
    sweep = uuid.uuid4().hex
    jobs = []
    for question in questions:
        names = tuple(serving.get((question.votes, question.item.context), []))
        shipped: dict[str, bytes] = {}
        if pool.ships:
            for name in names:
                shipped.update(_files_of(out, name))
        jobs.append(SweepJob(sweep, question, policies, config, "" if pool.ships else str(out), every, names,
                             fail_fast, env, shipped))
    tally = {"not_run": 0, "hits": 0}

    def take(result: SweepJobResult) -> None:
        for name, data in result.files.items():
            write_atomic(inside(out, name), data)
        for record in result.records:
            emit(record)
        tally["not_run"] += result.not_run
        tally["hits"] += result.cross_depth_hits
        if result.failure is not None:
            raise result.failure

    try:
        await pool.run(sweep_job, jobs, take, group=lambda job: (job.question.votes, job.question.item.context))
    finally:
        if budget is not None:
            budget.tokens, budget.cost = pool.spent()
        pool.release()
    return tally["not_run"], tally["hits"]

