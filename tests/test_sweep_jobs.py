from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pool_helpers import Priced, Spy

from hch.experts import ExpertPolicy
from hch.record import format as trace_format
from hch.run.call_cache import CallCache
from hch.run.policy import Policy
from hch.study.question_set import Item
from hch.study.ray_workers import RayPool
from hch.study.sweep import Outcome, RunRecord, SweepConfig, run_sweep
from hch.study.workers import LocalPool, Pool
from hch.tasks import get_task

pytestmark = pytest.mark.anyio

TESTS = Path(__file__).parent
PROVENANCE = {"started_at", "started", "ended", "latency", "wall_time", "original_latency", "saved_at",
              "cached", "grafted", "reused_from_depth", "call_cache_hits", "subtree_hits", "summary"}
"""Trace fields that say when, or which run or worker first computed what: they may differ between two
runs of one sweep in one process (e.g. at --concurrency 1 and 8) and so between workers too. (The
summary counts a subtree reused within the run once; the run's record counts it as a standalone run would.)"""
RESULT = ("votes", "policy", "id", "depth", "required_depth", "instance", "question", "gold", "answer", "status",
          "correct", "guess_on_path", "nodes", "calls", "invocations", "tokens", "cost", "trace", "finished")
"""The run-record fields that describe the run (the others say what this invocation spent on it)."""


def plain(data: Any) -> Any:
    """`data` without provenance fields."""
    if isinstance(data, dict):
        return {k: plain(v) for k, v in data.items() if k not in PROVENANCE}
    return [plain(v) for v in data] if isinstance(data, list) else data


def same_tree(path: Path) -> Any:
    """A saved trace as the tree it describes: each workspace with its calls and, in (step, order), the
    workspaces its subquestions went to, a reused subtree written out where it is reused. Node ids (which
    follow the order nodes happened to start in) and provenance are left out."""
    trace = trace_format.load(path)
    graph = trace.graph

    def tree(node: int) -> Any:
        edges = sorted(((d.get("step", -1), d.get("order", -1), d["kind"], t) for t, d in graph.succ[node].items()),
                       key=lambda e: (e[0], e[1], e[2] != "call", e[3]))
        calls = [plain({k: v for k, v in graph.nodes[t].items() if k not in ("id", "workspace")})
                 for *_, kind, t in edges if kind == "call"]
        asked = [(step, order, tree(t)) for step, order, kind, t in edges if kind != "call"]
        return {**plain(dict(graph.nodes[node])), "calls": sorted(json.dumps(c, sort_keys=True) for c in calls),
                "asked": asked}

    return {"meta": plain(trace.meta), "tree": tree(trace.root)}


def results(outcome: Outcome) -> list[tuple[Any, ...]]:
    return [tuple(getattr(r, f) for f in RESULT) for r in outcome.records]


def traces(out: Path) -> dict[str, Any]:
    return {p.relative_to(out).as_posix(): same_tree(p) for p in (out / "traces").rglob("*.json")}


async def sweep(items: list[Item], out: Path, policy: Policy, pool: Pool | None, depths: list[int],
                cache: Path | None = None, **budget: Any) -> Outcome:
    config = SweepConfig(source="test", questions=0, depths=depths, policy="expert", **budget)
    call_cache = CallCache(cache or out.with_suffix(".sqlite"))
    try:
        return await run_sweep(items, config, {1: policy}, out, call_cache=call_cache, pool=pool)
    finally:
        call_cache.close()


async def test_two_or_three_workers_give_the_rows_and_traces_of_one_process(tmp_path: Path) -> None:
    items = get_task("union-find").generate(8, seed=2) + get_task("permutation-powering").generate(4, seed=1)
    here = await sweep(items, tmp_path / "one", ExpertPolicy(), None, [0, 1, 2, 3])
    for workers in (2, 3):
        there = await sweep(items, tmp_path / f"w{workers}", ExpertPolicy(), LocalPool(workers), [0, 1, 2, 3])
        assert results(there) == results(here)
        assert traces(tmp_path / f"w{workers}") == traces(tmp_path / "one")
        assert there.calls_made >= here.calls_made and there.ran == here.ran == len(items) * 4
    again = await sweep(items, tmp_path / "w3", ExpertPolicy(), LocalPool(3), [0, 1, 2, 3])
    assert (again.ran, again.resumed, results(again)) == (0, len(items) * 4, results(here))


async def test_a_sweep_budget_holds_across_workers_and_a_resumed_sweep_spends_only_what_is_left(
        tmp_path: Path) -> None:
    items = get_task("union-find").generate(6, seed=3)
    first = await sweep(items, tmp_path / "out", Priced(), LocalPool(2), [1, 2], max_cost=0.5)
    assert first.not_run > 0 and first.spent is not None
    spent = first.spent["cost"]
    assert spent is not None and spent >= 0.5
    # Calls in flight when the budget ran out finish: at most the calls one run may have in flight
    # (max_asks_per_step per node at the deepest level), in each worker.
    assert spent < 0.5 + 2 * 8 * 8 * 0.01
    lines = (tmp_path / "out" / "runs.jsonl").read_text().splitlines()
    records = [RunRecord.model_validate_json(line) for line in lines]
    assert sum(r.cost_spent for r in records) == pytest.approx(spent)
    more = await sweep(items, tmp_path / "out", Priced(), LocalPool(2), [1, 2], max_cost=100.0)
    assert more.not_run == 0 and more.spent is not None and more.spent["cost_before"] == pytest.approx(spent)
    alone = await sweep(items, tmp_path / "alone", Priced(), None, [1, 2])
    assert results(more) == results(alone)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


PARENT = """
import sys
from pathlib import Path
import anyio
sys.path.insert(0, {tests!r})
from pool_helpers import Spy
from test_sweep_jobs import sweep
from hch.tasks import get_task
from hch.study.workers import LocalPool

if __name__ == "__main__":
    items = get_task("union-find").generate(10, seed=4)
    anyio.run(lambda: sweep(items, Path({out!r}), Spy(Path({log!r}), pause=0.01), LocalPool(2), [0, 1, 2, 3]))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from /proc")
async def test_a_sweep_whose_parent_is_killed_resumes_without_repeating_a_finished_call(tmp_path: Path) -> None:
    out, cache, log = tmp_path / "out", tmp_path / "out.sqlite", tmp_path / "first.log"
    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(tests=str(TESTS), out=str(out), log=str(log)))
    parent = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE)
    runs = out / "runs.jsonl"
    deadline = time.monotonic() + 300  # a guard against a hang, not a measurement
    while not (runs.exists() and len(runs.read_text().splitlines()) >= 3):
        assert parent.poll() is None, parent.stderr.read() if parent.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    workers = _children(parent.pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    while not all(_gone(pid) for pid in workers):  # the workers die with their parent
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert workers
    with sqlite3.connect(cache) as db:
        finished = {row[0] for row in db.execute("SELECT key FROM calls")}
    done = len(runs.read_text().splitlines())
    items = get_task("union-find").generate(10, seed=4)
    second = tmp_path / "second.log"
    outcome = await sweep(items, out, Spy(second, pause=0.01), LocalPool(2), [0, 1, 2, 3], cache=cache)
    assert finished and not finished & set(second.read_text().split())  # no finished call made again
    assert outcome.resumed >= done - 1 and outcome.ran == 40 - outcome.resumed  # a torn last line is rerun
    reference = await sweep(items, tmp_path / "ref", Spy(tmp_path / "ref.log"), None, [0, 1, 2, 3])
    assert results(outcome) == results(reference)


async def test_a_sweep_on_a_local_ray_instance_gives_the_rows_and_traces_of_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # Ray's workers import the test policy by name
    items = get_task("union-find").generate(4, seed=5)
    here = await sweep(items, tmp_path / "one", Priced(), None, [1, 2])
    pool = RayPool("local", 2)
    try:
        there = await sweep(items, tmp_path / "ray", Priced(), pool, [1, 2], max_cost=1000.0)
        assert results(there) == results(here)
        assert traces(tmp_path / "ray") == traces(tmp_path / "one")  # shipped back from the Ray workers
        assert there.spent is not None and there.spent["cost"] == pytest.approx(there.calls_made * 0.01)
        (tmp_path / "ray" / "runs.jsonl").unlink()  # the runs again, every call served by the relayed cache
        again = await sweep(items, tmp_path / "ray", Priced(), pool, [1, 2], max_cost=1000.0)
        assert again.calls_made == 0 and results(again) == results(here)
    finally:
        pool.close()
