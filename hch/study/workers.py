"""Where a study's jobs run: on N local processes, or on the workers of a Ray cluster.

A job is a picklable value handed to a module-level function (`fn(job) -> result`); a `Pool` runs
at most `workers` jobs at once and gives each result to the caller, in this (the parent) process,
as soon as its job finishes, so the caller alone writes the study's record files.

What every worker shares with the others and with the parent (`Env`):
- the call cache: local workers open the same SQLite file (WAL mode: several processes read and
  write it at once); Ray workers, which may be on other machines, reach the parent's file through
  one actor on the parent's machine. A finished call is committed as in one process, so a sweep
  killed at any moment repeats no finished call when rerun.
- the sweep's budget: one pair of counters (tokens, dollars), in shared memory for local workers
  and in an actor on Ray; every worker adds each call's spend and checks it before each call.
- files: local workers write their traces into the output directory; Ray workers write them into
  a temporary directory and ship them back with the job's result (`Pool.ships`), the parent writes them.

The Ray pool, its actors and its relayed cache are in `hch.study.ray_workers`.

Local workers die with the parent (Linux: `PR_SET_PDEATHSIG`, elsewhere a watchdog thread), so a
killed sweep leaves no process writing behind it; Ray kills a dead driver's tasks itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import pickle
import re
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio

from hch.errors import HchError
from hch.run.budget import SharedBudget
from hch.run.call_cache import CallCache

MAX_WORKERS = 256
"""The most workers one study may ask for (local processes or Ray tasks in flight)."""
J = TypeVar("J")
R = TypeVar("R")


class WorkersError(HchError):
    """The workers cannot start or a worker was lost (a malformed or unreachable --ray address, a dead process)."""


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_workers(text: str) -> int:
    """`--workers`: a whole number from 1 to MAX_WORKERS, or `auto` (every core of this machine)."""
    value = text.strip().lower()
    if value == "auto":
        return min(cores(), MAX_WORKERS)
    if not re.fullmatch(r"[0-9]{1,6}", value) or not 1 <= int(value) <= MAX_WORKERS:  # -1, 0, nan, 1e3, 2.5
        raise ValueError(f"{text!r} is not a number of workers: give a whole number from 1 to {MAX_WORKERS}, or auto")
    return int(value)


# ---- what workers share ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Env:
    """How a worker reaches the study's call cache and budget (picklable; part of every job)."""

    cache_path: str | None = None
    """Local workers: the call cache file (None: no call cache)."""
    cache_actor: Any = None
    """Ray workers: the actor serving the parent's call cache."""
    budget: tuple[int | None, float | None] | None = None
    """The budget's (max_total_tokens, max_cost), or None without one."""
    budget_actor: Any = None
    """Ray workers: the actor counting the budget's spend."""
    token: str = ""
    """Names the pool that made this `Env` (a worker process may serve several pools one after another)."""


_STATE: dict[str, Any] = {}
"""This worker process's open call cache, shared-memory budget cell and per-study state."""


def worker_state() -> dict[str, Any]:
    """A dict that lives as long as this worker process (for caches kept from one job to the next)."""
    return _STATE


def worker_cache(env: Env) -> CallCache | None:
    """This worker's connection to the study's call cache (opened once per process)."""
    key = (env.token, env.cache_path)
    if env.cache_actor is None and env.cache_path is None:
        return None
    if _STATE.get("cache_key") != key:
        if "cache" in _STATE:
            _STATE["cache"].close()
        if env.cache_actor is not None:
            from hch.study.ray_workers import RelayCache

            _STATE["cache"] = RelayCache(env.cache_actor)
        else:
            _STATE["cache"] = CallCache(env.cache_path or "")
        _STATE["cache_key"] = key
    cache: CallCache = _STATE["cache"]
    return cache


def worker_budget(env: Env) -> SharedBudget | None:
    """The study's budget as this worker sees it: every worker's spend, as it goes."""
    if env.budget is None:
        return None
    if env.budget_actor is not None:
        from hch.study.ray_workers import RayCounter

        counter: Counter = RayCounter(env.budget_actor)
    else:
        counter = _STATE["cell"]
    return CountedBudget(*env.budget, counter=counter)


class Counter:
    """Tokens and dollars spent by every worker, kept in one place."""

    def add(self, tokens: int, cost: float) -> None:
        raise NotImplementedError

    def totals(self) -> tuple[int, float]:
        raise NotImplementedError


class CellCounter(Counter):
    """The counters in shared memory (local workers); a lock makes each addition whole."""

    def __init__(self, cell: Any) -> None:
        self.cell = cell

    def add(self, tokens: int, cost: float) -> None:
        with self.cell.get_lock():
            self.cell[0] += tokens
            self.cell[1] += cost

    def totals(self) -> tuple[int, float]:
        with self.cell.get_lock():
            return int(self.cell[0]), float(self.cell[1])


class CountedBudget(SharedBudget):
    """A `SharedBudget` whose spend lives in a `Counter` shared by every worker: a worker checks the
    total spent by all before each call, and adds what each of its calls spent."""

    def __init__(self, max_total_tokens: int | None, max_cost: float | None, counter: Counter) -> None:
        super().__init__(max_total_tokens, max_cost)
        self.counter = counter

    def add(self, usage: Any) -> None:
        self.counter.add(int(usage.total_tokens), float(usage.cost))

    def exhausted(self) -> tuple[str, str] | None:
        self.tokens, self.cost = self.counter.totals()
        return super().exhausted()


# ---- pools -------------------------------------------------------------------------------------------------------


class Pool:
    """Runs jobs on `workers` workers; `open` it before `run` and `close` it after."""

    workers: int
    ships: bool = False
    """Whether workers write files into a directory of their own and ship them back with their results."""

    def open(self, cache: CallCache | None, budget: SharedBudget | None) -> Env:
        """Start sharing `cache` and `budget` (with what it has spent so far) with the workers."""
        raise NotImplementedError

    async def run(self, fn: Callable[[J], R], jobs: Sequence[J], take: Callable[[R], None],
                  group: Callable[[J], Hashable] | None = None) -> None:
        """Run `fn(job)` for every job, at most `workers` at once, and `take` each result here as it comes.
        Jobs of one `group` go to one worker in turn while other groups are left for the other workers (a
        worker's caches serve the group's later jobs). An exception (from a job, from `take`, or a
        cancellation) stops every worker at once."""
        raise NotImplementedError

    def spent(self) -> tuple[int, float]:
        """Tokens and dollars spent against the shared budget, by every worker."""
        raise NotImplementedError

    def start(self) -> None:
        """Connect to the workers' cluster, if any (done by `open` when not done before)."""

    def release(self) -> None:
        """Stop every worker and let go of what `open` shared (the pool may be opened again)."""

    def close(self) -> None:
        """`release`, and disconnect from the cluster."""
        self.release()


class Groups(Generic[J]):
    """Jobs in order, by group: a worker keeps to the group it has while that has jobs left, then takes the
    first group no worker has started, then helps with any group."""

    def __init__(self, jobs: Sequence[J], group: Callable[[J], Hashable] | None) -> None:
        self._groups: dict[Hashable, deque[J]] = {}
        for number, job in enumerate(jobs):
            self._groups.setdefault(group(job) if group else number, deque()).append(job)
        self._fresh = deque(self._groups)
        self._has: dict[Hashable, Hashable] = {}
        self._left = len(jobs)

    def __bool__(self) -> bool:
        return self._left > 0

    def next_for(self, worker: Hashable) -> J:
        key = self._has.get(worker)
        if key is None or not self._groups.get(key):
            while self._fresh and not self._groups.get(self._fresh[0]):
                self._fresh.popleft()
            key = self._fresh.popleft() if self._fresh else next(k for k, jobs in self._groups.items() if jobs)
            self._has[worker] = key
        self._left -= 1
        job = self._groups[key].popleft()
        if not self._groups[key]:
            del self._groups[key]  # helping finds a group with jobs left at once
        return job


def _die_with(parent: int) -> None:
    """End this worker when the parent dies (a SIGKILLed sweep must not leave workers writing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def _serve(conn: Connection, cell: Any, parent: int) -> None:
    """A local worker: run the jobs the parent sends until it sends None or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    _die_with(parent)
    if cell is not None:
        _STATE["cell"] = CellCounter(cell)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        fn, job = message
        try:
            reply: tuple[str, Any] = ("ok", fn(job))
        except BaseException as exc:  # sent back whole when it pickles, else as one line
            reply = ("error", exc if pickles(exc) else WorkersError(f"a worker failed: {type(exc).__name__}: {exc}"))
        conn.send(reply)


def pickles(value: object) -> bool:
    try:
        pickle.loads(pickle.dumps(value))
    except Exception:
        return False
    return True


class LocalPool(Pool):
    """`workers` processes on this machine (started fresh, `spawn`: no state inherited by accident)."""

    def __init__(self, workers: int) -> None:
        if not 1 <= workers <= MAX_WORKERS:
            raise WorkersError(f"workers must be from 1 to {MAX_WORKERS}, not {workers}")
        self.workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._cell: Any = None
        self._processes: list[Any] = []
        self.cpu_seconds: list[float] = []
        """CPU seconds each worker of the last `run` used, start-up included (Linux; empty elsewhere)."""

    def open(self, cache: CallCache | None, budget: SharedBudget | None) -> Env:
        if budget is not None:
            self._cell = self._context.Array("d", [float(budget.tokens), budget.cost])
        if cache is not None:
            cache.flush()  # the workers see every call made here before
        return Env(cache_path=str(cache.path) if cache is not None else None, token=uuid.uuid4().hex,
                   budget=(budget.max_total_tokens, budget.max_cost) if budget is not None else None)

    async def run(self, fn: Callable[[J], R], jobs: Sequence[J], take: Callable[[R], None],
                  group: Callable[[J], Hashable] | None = None) -> None:
        idle: list[Connection] = []
        busy: dict[Connection, Any] = {}
        queue = Groups(jobs, group)
        try:
            for _ in range(min(self.workers, len(jobs))):
                idle.append(self._start())
            while queue or busy:
                while queue and idle:
                    conn = idle.pop()
                    conn.send((fn, queue.next_for(conn)))
                    busy[conn] = True
                ready = await anyio.to_thread.run_sync(wait, list(busy), 0.2)
                for done in ready:
                    assert isinstance(done, Connection)
                    conn = done
                    kind, value = self._receive(conn)
                    del busy[conn]
                    idle.append(conn)
                    if kind == "error":
                        raise value
                    take(value)
        except BaseException:
            self._stop(kill=True)
            raise
        self.cpu_seconds = [seconds for p in self._processes if (seconds := _cpu_of(p.pid)) is not None]
        for conn in idle:
            conn.send(None)
        self._stop(kill=False)

    def _start(self) -> Connection:
        mine, theirs = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(theirs, self._cell, os.getpid()), daemon=True)
        process.start()
        theirs.close()
        self._processes.append(process)
        return mine

    def _receive(self, conn: Connection) -> tuple[str, Any]:
        try:
            message: tuple[str, Any] = conn.recv()
        except (EOFError, OSError):
            raise WorkersError("a worker process died before finishing its job (killed? out of memory?); "
                               "finished runs are kept: rerun the same command to resume") from None
        return message

    def _stop(self, kill: bool) -> None:
        for process in self._processes:
            if kill:
                process.kill()
            process.join(timeout=None if kill else 10)
            if process.is_alive():
                process.kill()
                process.join()
        self._processes = []

    def spent(self) -> tuple[int, float]:
        return CellCounter(self._cell).totals() if self._cell is not None else (0, 0.0)

    def release(self) -> None:
        self._stop(kill=True)
        self._cell = None


def _cpu_of(pid: int) -> float | None:
    """CPU seconds (user and system) process `pid` has used so far, from /proc; None where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_pool(workers: int | None, ray: str | None) -> Pool | None:
    """The pool `--workers N` / `--ray ADDRESS` ask for, or None to run everything in this process
    (`--workers 1` without Ray)."""
    if ray is not None:
        from hch.study.ray_workers import RayPool

        return RayPool(ray, workers)
    if workers is None or workers == 1:
        return None
    return LocalPool(workers)

