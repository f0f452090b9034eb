"""The Ray side of `hch.study.workers`: tasks on a cluster, with the parent's call cache and a sweep's budget
served by actors (Ray is imported only when a pool connects: `pip install 'hch[ray]'`).

hch must be installed on every node; nothing is shared through the file system: each job's traces come
back with its result, and the call cache is served by an actor on the parent's machine.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio

from hch.errors import HchError
from hch.run.budget import SharedBudget
from hch.run.call_cache import SLOW_CALL_SECONDS, CallCache
from hch.study.workers import MAX_WORKERS, Counter, Env, Groups, Pool, WorkersError
from hch.workspace import Reply

RAY_CONNECT_SECONDS = 20.0
"""How long connecting to a Ray cluster may take before hch gives up with one line."""
J = TypeVar("J")
R = TypeVar("R")


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

    def count(self) -> int:
        return len(self.cache)

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
        self.flush()
        import ray

        return int(ray.get(self.actor.count.remote()))

    def close(self) -> None:
        self.flush()


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
