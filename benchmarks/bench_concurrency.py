"""Concurrency: wall time of fixed-latency policy calls against the best any scheduler could do.

A policy whose every call takes L (an anyio sleep) expands trees of several shapes, with and
without a concurrency limit (an anyio.CapacityLimiter around the call, as the LLM policy holds
one around its requests). The bound is the critical path (calls that must follow each other,
times L) or, where the limit binds, total calls x L / limit. That last bound cannot be reached
when calls depend on each other (a parent's answer waits for its children), so the run also
reports the ideal schedule: the same tree and FIFO limiter with zero overhead, simulated in
units of L. Target: wall / bound <= 1.15, where the bound is the larger of the two.

    python benchmarks/bench_concurrency.py [--quick]
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import anyio
from _common import parser, verdict, write

import hch
from hch.limits import Limits
from hch.workspace import Answer, Ask, Workspace

TARGET = 1.15


@dataclass(frozen=True)
class Shape:
    """A uniform tree: every node above depth 0 takes `steps` steps asking `branching` questions each."""

    name: str
    depth: int
    branching: int
    steps: int

    def calls(self) -> int:
        """Policy calls of the whole tree: steps + 1 per inner node, 1 per leaf."""
        per_level = [(self.branching * self.steps) ** level for level in range(self.depth + 1)]
        inner, leaves = sum(per_level[:-1]), per_level[-1]
        return int(inner * (self.steps + 1) + leaves)

    def nodes(self) -> int:
        return sum((self.branching * self.steps) ** level for level in range(self.depth + 1))

    def critical_path(self) -> int:
        """Calls on the longest chain that must run one after another."""
        path = 1
        for _ in range(self.depth):
            path = self.steps * (1 + path) + 1
        return path


class Sleepy:
    """Every call sleeps `latency` (inside `limiter` if given), then asks or answers per the shape."""

    def __init__(self, shape: Shape, latency: float, limiter: anyio.CapacityLimiter | None) -> None:
        self.shape, self.latency, self.limiter = shape, latency, limiter
        self.fingerprint = f"bench-sleepy-{shape.name}"

    async def act(self, workspace: Workspace) -> Ask | Answer:
        if self.limiter is None:
            await anyio.sleep(self.latency)
        else:
            async with self.limiter:
                await anyio.sleep(self.latency)
        step = len(workspace.steps)
        if workspace.depth > 0 and step < self.shape.steps:
            base = f"{workspace.question}.{step}"
            return Ask(questions=[f"{base}.{i}" for i in range(self.shape.branching)])
        return Answer(answer="done")


def ideal_schedule(shape: Shape, limit: int | None) -> int:
    """Makespan, in units of L, of the tree's calls run with zero overhead and a FIFO limiter.

    Each tick runs up to `limit` ready calls in the order they became ready (what
    anyio.CapacityLimiter does); their successors become ready at the end of the tick.
    """
    ready: deque[tuple[int, int, int]] = deque([(0, 0, shape.depth)])  # (node, call index, depth)
    parent: dict[int, int] = {}
    waiting: dict[int, int] = {}  # node -> children not yet answered in its current step
    calls_made: dict[int, int] = {}
    next_id, ticks = 1, 0
    while ready:
        ticks += 1
        batch = [ready.popleft() for _ in range(min(limit or len(ready), len(ready)))]
        for node, index, depth in batch:
            calls_made[node] = index + 1
            if depth > 0 and index < shape.steps:  # an ask: start this step's children
                waiting[node] = shape.branching
                for _ in range(shape.branching):
                    parent[next_id] = node
                    ready.append((next_id, 0, depth - 1))
                    next_id += 1
            elif node in parent:  # an answer: the parent's step may be complete
                up = parent[node]
                waiting[up] -= 1
                if waiting[up] == 0:
                    ready.append((up, calls_made[up], depth + 1))
    return ticks


async def run(shape: Shape, latency: float, limit: int | None) -> float:
    limiter = anyio.CapacityLimiter(limit) if limit else None
    limits = Limits(max_asks_per_step=max(8, shape.branching), max_steps_per_node=max(8, shape.steps),
                    max_nodes=shape.nodes())
    began = time.perf_counter()
    result = await hch.answer("q", depth=shape.depth, policy=Sleepy(shape, latency, limiter), limits=limits)
    wall = time.perf_counter() - began
    assert result.summary.nodes == shape.nodes() and result.summary.policy_calls == shape.calls(), result.summary
    return wall


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    latency, repeats = (0.005, 1) if args.quick else (0.020, 3)
    shapes = [
        Shape("wide", depth=1, branching=64, steps=1),
        Shape("deep", depth=20, branching=1, steps=1),
        Shape("sequential", depth=1, branching=2, steps=8),
        Shape("binary", depth=8, branching=2, steps=1),
        Shape("bushy", depth=3, branching=3, steps=2),
    ]
    if args.quick:
        shapes = [Shape("wide", 1, 8, 1), Shape("deep", 3, 1, 1), Shape("sequential", 1, 2, 3)]
    rows: list[dict[str, Any]] = []
    for shape in shapes:
        for limit in (None, 8):
            calls, path = shape.calls(), shape.critical_path()
            naive = max(float(path), calls / limit) if limit else float(path)
            ideal = ideal_schedule(shape, limit)
            bound = max(naive, ideal) * latency
            anyio.run(run, shape, latency / 10, limit)  # warm-up: imports, pydantic schemas
            wall = min(anyio.run(run, shape, latency, limit) for _ in range(repeats))  # least disturbed
            rows.append({
                "shape": shape.name, "depth": shape.depth, "branching": shape.branching, "steps": shape.steps,
                "nodes": shape.nodes(), "calls": calls, "critical_path_calls": path, "limit": limit,
                "binding": "limit" if limit and calls / limit > path else "critical path",
                "naive_bound_seconds": naive * latency, "ideal_schedule_seconds": ideal * latency,
                "latency": latency, "bound_seconds": bound, "wall_seconds": wall, "ratio": wall / bound,
                "ratio_to_naive_bound": wall / (naive * latency),
            })
    worst = max(row["ratio"] for row in rows)
    print(f"policy latency L = {latency * 1000:.0f} ms; naive bound = critical path x L, or calls x L / limit;")
    print("ideal = zero-overhead FIFO schedule of the same calls; ratio = wall / max(naive, ideal)")
    print(f"  {'shape':<11}{'nodes':>6}{'calls':>6}{'limit':>6}  {'naive':>7}  {'ideal':>7}  {'wall':>7}  ratio")
    for row in rows:
        print(f"  {row['shape']:<11}{row['nodes']:>6}{row['calls']:>6}{row['limit'] or '-':>6}  "
              f"{row['naive_bound_seconds']:6.3f}s  {row['ideal_schedule_seconds']:6.3f}s  "
              f"{row['wall_seconds']:6.3f}s  {row['ratio']:.3f}")
    print(f"target: wall / bound <= {TARGET} everywhere: worst {worst:.3f} {verdict(worst, TARGET)}")
    write("concurrency", args.quick, args.out, {
        "latency": latency, "repeats": repeats, "rows": rows,
        "target_ratio": TARGET, "worst_ratio": worst, "met": worst <= TARGET,
    })


if __name__ == "__main__":
    main()
