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

Local workers die with the parent (Linux: `PR_SET_PDEATHSIG`, elsewhere a watchdog thread), so a
killed sweep leaves no process writing behind it; Ray kills a dead driver's tasks itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import pickle
import re
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio

from hch.errors import HchError
from hch.run.budget import SharedBudget
from hch.run.call_cache import SLOW_CALL_SECONDS, CallCache
from hch.workspace import Reply

MAX_WORKERS = 256
"""The most workers one study may ask for (local processes or Ray tasks in flight)."""
RAY_CONNECT_SECONDS = 20.0
"""How long connecting to a Ray cluster may take before hch gives up with one line."""
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
        relayed = env.cache_actor is not None
        _STATE["cache"] = RelayCache(env.cache_actor) if relayed else CallCache(env.cache_path or "")
        _STATE["cache_key"] = key
    cache: CallCache = _STATE["cache"]
    return cache


def worker_budget(env: Env) -> SharedBudget | None:
    """The study's budget as this worker sees it: every worker's spend, as it goes."""
    if env.budget is None:
        return None
    counter: Counter = RayCounter(env.budget_actor) if env.budget_actor is not None else _STATE["cell"]
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


class RayCounter(Counter):
    """The counters in an actor (Ray workers, on any machine)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def add(self, tokens: int, cost: float) -> None:
        self.actor.add.remote(tokens, cost)  # the actor runs one caller's messages in order

    def totals(self) -> tuple[int, float]:
        import ray

        found: tuple[int, float] = ray.get(self.actor.totals.remote())
        return found


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


class BudgetServer:
    """The Ray actor counting a sweep's spend."""

    def __init__(self, tokens: int, cost: float) -> None:
        self.tokens, self.cost = tokens, cost

    def add(self, tokens: int, cost: float) -> None:
        self.tokens, self.cost = self.tokens + tokens, self.cost + cost

    def totals(self) -> tuple[int, float]:
        return self.tokens, self.cost


class CacheServer:
    """The Ray actor that serves the parent's call cache file to workers on any machine."""

    def __init__(self, path: str) -> None:
        self.cache = CallCache(path)

    def entry(self, key: str) -> tuple[Reply, float | None] | None:
        return self.cache.entry(key)

    def put(self, rows: list[tuple[str, str, Reply, float]]) -> None:
        for key, fingerprint, reply, latency in rows:
            self.cache.put(key, fingerprint, reply, latency)
        self.cache.flush()  # committed when the actor has them, as a slow call is in one process

    def close(self) -> None:
        self.cache.close()


class RelayCache(CallCache):
    """A `CallCache` on a Ray worker: lookups ask the `CacheServer`; a slow call is sent at once, fast ones
    in batches (sent when the run flushes, or BATCH_SIZE at a time), as one process commits them."""

    def __init__(self, actor: Any) -> None:  # no file here: the actor holds it
        self.path = Path("<ray>")
        self.actor = actor
        self._rows: list[tuple[str, str, Reply, float]] = []
        self._local: dict[str, tuple[Reply, float | None]] = {}

    def entry(self, key: str) -> tuple[Reply, float | None] | None:
        if key in self._local:
            return self._local[key]
        import ray

        found: tuple[Reply, float | None] | None = ray.get(self.actor.entry.remote(key))
        return found

    def put(self, key: str, fingerprint: str, reply: Reply, latency: float) -> None:
        self._rows.append((key, fingerprint, reply, latency))
        self._local[key] = (reply, latency)
        if latency >= SLOW_CALL_SECONDS or len(self._rows) >= 512:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            import ray

            ray.get(self.actor.put.remote(self._rows))  # committed before the run (or the call) goes on
            self._rows = []
        self._local.clear()

    def __len__(self) -> int:
        raise NotImplementedError("a relayed call cache is not counted")

    def close(self) -> None:
        self.flush()


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
        return self._groups[key].popleft()


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
            reply = ("error", exc if _pickles(exc) else WorkersError(f"a worker failed: {type(exc).__name__}: {exc}"))
        conn.send(reply)


def _pickles(value: object) -> bool:
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


def check_ray_address(address: str) -> str:
    """`local`, `auto`, HOST:PORT or ray://HOST:PORT; anything else is refused in one line."""
    if address in ("local", "auto"):
        return address
    rest = address.removeprefix("ray://")
    host, colon, port = rest.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in "/ @?#"):
        raise WorkersError(f"{address!r} is not a Ray address: give HOST:PORT (a cluster's head), ray://HOST:PORT "
                           "(Ray Client), auto (the cluster started on this machine) or local (a new one here)")
    return address


def _reachable(address: str, seconds: float) -> None:
    """Refuse at once an address where nothing listens (Ray itself would retry for minutes)."""
    if address in ("local", "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as exc:
        raise WorkersError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                           "`ray start --head` or check the address") from None


class RayPool(Pool):
    """Tasks on a Ray cluster: `address` as `ray.init` takes it, or `local` for a new Ray instance here.

    hch must be installed on every node (`pip install 'hch[ray]'`); nothing else is shared through the file
    system: traces come back with each job's result and the call cache is served by an actor on this machine.
    """

    ships = True

    def __init__(self, address: str, workers: int | None = None, connect_seconds: float = RAY_CONNECT_SECONDS) -> None:
        self.address = check_ray_address(address)
        if workers is not None and not 1 <= workers <= MAX_WORKERS:
            raise WorkersError(f"workers must be from 1 to {MAX_WORKERS}, not {workers}")
        self.connect_seconds = connect_seconds
        self.workers = workers or 0
        self._actors: list[Any] = []
        self._budget: Any = None
        self._cache: Any = None
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._connect(_import_ray())

    def open(self, cache: CallCache | None, budget: SharedBudget | None) -> Env:
        ray = _import_ray()
        self.start()
        if not self.workers:
            self.workers = max(1, min(MAX_WORKERS, int(ray.cluster_resources().get("CPU", 1))))
        here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False)
        if cache is not None:
            cache.flush()
            self._cache = ray.remote(num_cpus=0)(CacheServer).options(scheduling_strategy=here).remote(str(cache.path))
            self._actors.append(self._cache)
        if budget is not None:
            self._budget = ray.remote(num_cpus=0)(BudgetServer).remote(budget.tokens, budget.cost)
            self._actors.append(self._budget)
        return Env(cache_actor=self._cache, budget_actor=self._budget, token=uuid.uuid4().hex,
                   budget=(budget.max_total_tokens, budget.max_cost) if budget is not None else None)

    def _connect(self, ray: Any) -> None:
        if self.address == "local":  # a new instance on this machine: nothing to wait for but its start
            with _quiet_ray():
                ray.init(num_cpus=self.workers or None, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            self._started = True
            return
        _reachable(self.address, min(5.0, self.connect_seconds))
        failure: list[BaseException] = []

        def connect() -> None:
            try:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=connect, daemon=True)  # ray.init may hang on a port that is not Ray's
        with _quiet_ray():
            thread.start()
            thread.join(self.connect_seconds)
        if thread.is_alive():
            raise WorkersError(f"the Ray cluster at {self.address} did not answer within {self.connect_seconds:.0f} s "
                               "(a cluster with token authentication also needs RAY_AUTH_MODE=token and its token)")
        if failure:
            raise WorkersError(f"cannot connect to Ray at {self.address}: {' '.join(str(failure[0]).split())[:300]}")
        self._started = True

    async def run(self, fn: Callable[[J], R], jobs: Sequence[J], take: Callable[[R], None],
                  group: Callable[[J], Hashable] | None = None) -> None:
        ray = _import_ray()
        task = ray.remote(num_cpus=1, max_retries=0)(_call)
        queue = Groups(jobs, group)
        flying: dict[Any, int] = {}  # task -> the slot it runs in (a slot keeps to one group, as a local worker)
        free = list(range(min(self.workers, len(jobs))))
        try:
            while queue or flying:
                while queue and free:
                    slot = free.pop()
                    flying[task.remote(fn, queue.next_for(slot))] = slot
                ready, _ = await anyio.to_thread.run_sync(_wait_one, ray, list(flying))
                for ref in ready:
                    free.append(flying.pop(ref))
                    take(self._result(ray, ref))
        except BaseException:
            for ref in flying:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise

    @staticmethod
    def _result(ray: Any, ref: Any) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            raise (cause if isinstance(cause, HchError) else WorkersError(
                f"a Ray task failed: {_one_line(exc)}")) from None
        except ray.exceptions.RayError as exc:
            raise WorkersError(f"a Ray task was lost: {_one_line(exc)}") from None

    def spent(self) -> tuple[int, float]:
        if self._budget is None:
            return 0, 0.0
        return RayCounter(self._budget).totals()

    def release(self) -> None:
        if not self._started:
            return
        ray = _import_ray()
        if self._cache is not None:  # commits what it holds before it goes
            with contextlib.suppress(Exception):
                ray.get(self._cache.close.remote(), timeout=10)
        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self._actors, self._cache, self._budget = [], None, None

    def close(self) -> None:
        self.release()
        if self._started:
            _import_ray().shutdown()
            self._started = False


@contextlib.contextmanager
def _quiet_ray() -> Iterator[None]:
    """Ray's notes while it connects (that it runs outside the main thread, how its authentication is set)
    are not the user's business: only its errors are shown."""
    quiet = logging.getLogger("ray")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        yield
    finally:
        quiet.setLevel(level)


def _one_line(error: BaseException) -> str:
    """Ray's message for a failed task, as one plain line (without its colour codes), cut to 300 characters."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split())[:300]


def _wait_one(ray: Any, refs: list[Any]) -> tuple[list[Any], list[Any]]:
    ready, rest = ray.wait(refs, num_returns=1, timeout=0.2)
    return list(ready), list(rest)


def _call(fn: Callable[[Any], Any], job: Any) -> Any:
    """A Ray task: run one job."""
    return fn(job)


def _import_ray() -> Any:
    try:
        import ray
        import ray.util.scheduling_strategies
    except ImportError:
        raise WorkersError("--ray needs Ray: pip install 'hch[ray]'") from None
    return ray


def make_pool(workers: int | None, ray: str | None) -> Pool | None:
    """The pool `--workers N` / `--ray ADDRESS` ask for, or None to run everything in this process
    (`--workers 1` without Ray)."""
    if ray is not None:
        return RayPool(ray, workers)
    if workers is None or workers == 1:
        return None
    return LocalPool(workers)

