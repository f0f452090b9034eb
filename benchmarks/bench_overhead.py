"""Engine overhead: CPU µs per node of an instant policy expanding full binary trees, 10^3 to 10^5 nodes.

The floor is a bare `asyncio.gather` recursion of the same shape, timed in the same run under the
same collector pacing as the engine (`hch.run.collector.paced`), in CPU time (`time.process_time`).
Headline: what `hch ask` does by default, a trace file written and the call cache (a fresh
file: every call misses and is stored). Targets: the headline at most 4x the floor at every size,
flat per-node cost across sizes, and (with `--ice-python`) at least 10x cheaper per node than
Ought's ICE with its tracing on (run in its own environment by `ice_tree.py`).

`--flat 9,13,16,19` measures only the flat series, 10^3 to 10^6 workspaces, and writes
`overhead_flat.json`: the headline with the trace streamed to its file (`keep_trace=False`: at 10^6
nodes a trace held in memory would take 4 GiB) at every size, next to the floor at the same sizes.

    python benchmarks/bench_overhead.py [--quick] [--depths 9,12,15] [--ice-python /path/to/python]
    python benchmarks/bench_overhead.py --flat 9,13,16,19 [--flat-repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from _common import parser, positive, verdict, write

import hch
from hch.limits import Limits
from hch.run.call_cache import CallCache
from hch.run.collector import paced
from hch.workspace import Answer, Ask, Reply, Workspace

TARGET = 4.0
"""The headline (trace file + call cache) at most this many times the floor."""
FLAT = 1.25
"""Per-node cost at the largest size at most this many times that at the smallest."""
ICE_FACTOR = 10.0
"""ICE with tracing at least this many times hch's headline cost per node."""


class Binary:
    """Asks two distinct subquestions once, then answers: a full binary tree of distinct questions."""

    fingerprint = "bench-binary"

    async def act(self, workspace: Workspace) -> Ask | Answer:
        if workspace.depth > 0 and not workspace.steps:
            return Ask(questions=[workspace.question + "0", workspace.question + "1"])
        return Answer(answer="done")


async def gather_floor(question: str, depth: int) -> str:
    """The floor: the same recursion with nothing but asyncio.gather."""
    if depth > 0:
        await asyncio.gather(gather_floor(question + "0", depth - 1), gather_floor(question + "1", depth - 1))
    return "done"


async def taskgroup_floor(question: str, depth: int) -> str:
    """The same recursion with asyncio's task groups (what the engine uses under asyncio)."""
    if depth > 0:
        async with asyncio.TaskGroup() as group:
            group.create_task(taskgroup_floor(question + "0", depth - 1))
            group.create_task(taskgroup_floor(question + "1", depth - 1))
    return "done"


async def anyio_floor(question: str, depth: int) -> str:
    """The same recursion with anyio task groups (what the engine uses under trio)."""
    if depth > 0:
        async with anyio.create_task_group() as group:
            group.start_soon(anyio_floor, question + "0", depth - 1)
            group.start_soon(anyio_floor, question + "1", depth - 1)
    return "done"


def cpu(repeats: int, run: Callable[[], Any], setup: Callable[[], Any] | None = None) -> float:
    """The least CPU seconds of `repeats` runs of `run()`, each from a collected heap, paced as runs are."""
    best = float("inf")
    for _ in range(repeats):
        arg = setup() if setup is not None else None
        gc.collect()
        with paced():
            began = time.process_time()
            run() if arg is None else run(arg)  # type: ignore[call-arg]
            best = min(best, time.process_time() - began)
    return best


def engine_run(depth: int, nodes: int, trace_file: Path | None, cache: CallCache | None) -> None:
    result = hch.answer_sync(
        "q", depth=depth, policy=Binary(), limits=Limits(max_nodes=nodes), trace_path=trace_file, call_cache=cache,
    )
    assert result.summary.nodes == nodes, result.summary  # every node really expanded


def measure(depth: int, repeats: int, tmp: Path) -> dict[str, Any]:
    """Every configuration at one size, µs per node and x the floor."""
    nodes = 2 ** (depth + 1) - 1
    runs = iter(range(10**9))

    def fresh(name: str) -> Path:  # a new path per run: a rerun to the same path would reload the last trace
        return tmp / f"{name}-{depth}-{next(runs)}.json"

    def cold_run() -> None:
        cache = CallCache(fresh("cold").with_suffix(".sqlite"))
        try:
            engine_run(depth, nodes, fresh("trace"), cache)
        finally:
            cache.close()

    warm = CallCache(tmp / f"warm-{depth}.sqlite")
    engine_run(depth, nodes, None, warm)  # fill it: every call of the measured runs is a hit
    seconds = {
        "floor (asyncio.gather)": cpu(repeats, lambda: asyncio.run(gather_floor("q", depth))),
        "reference: asyncio task groups": cpu(repeats, lambda: asyncio.run(taskgroup_floor("q", depth))),
        "reference: anyio task groups": cpu(repeats, lambda: anyio.run(anyio_floor, "q", depth)),
        "in-memory trace, no cache": cpu(repeats, lambda: engine_run(depth, nodes, None, None)),
        "trace file, no cache": cpu(repeats, lambda: engine_run(depth, nodes, fresh("trace"), None)),
        "trace file + call cache (cold)": cpu(repeats, cold_run),
        "trace file + call cache (warm)": cpu(repeats, lambda: engine_run(depth, nodes, fresh("trace"), warm)),
    }
    warm.close()
    seconds["mandated libraries alone (no engine)"] = min(mandated(depth, tmp) for _ in range(repeats))
    seconds["  least data-model work, no store"] = min(least_model_work(depth) for _ in range(repeats))
    seconds["  call cache alone, no engine"] = cpu(repeats, lambda index: cache_alone(depth, tmp, index, []),
                                                   setup=lambda: next(runs))
    floor = seconds["floor (asyncio.gather)"]
    rows = [{"config": name, "us_per_node": s / nodes * 1e6, "x_floor": s / floor} for name, s in seconds.items()]
    return {"depth": depth, "nodes": nodes, "rows": rows,
            "mandated_x_floor": seconds["mandated libraries alone (no engine)"] / floor,
            "lower_bound_x_floor": lower_bound(seconds),
            "headline_us_per_node": seconds["trace file + call cache (cold)"] / nodes * 1e6,
            "headline_x_floor": seconds["trace file + call cache (cold)"] / floor}


def mandated(depth: int, tmp: Path) -> float:
    """CPU seconds of what the mandated libraries must do for the same tree, with no engine around it:
    per policy call a pydantic `Workspace` built, dumped for the trace and as JSON for its cache key
    (hashed), the policy's action and its `Reply` built and dumped, an SQLite lookup and a batched insert
    (`CallCache`), the call's trace record serialized; per workspace its `SubAnswer` and its records."""
    from hch.record.format import edge_line, node_line
    from hch.run.call_cache import call_key
    from hch.workspace import Reply, SubAnswer, Usage

    cache = CallCache(tmp / f"mandated-{depth}.sqlite")
    began = time.process_time()
    stack, node = [("q", depth)], 0
    while stack:
        question, left = stack.pop()
        steps: list[tuple[SubAnswer, ...]] = []
        for call in range(2 if left > 0 else 1):
            workspace = Workspace(question=question, depth=left, steps=tuple(steps), steps_left=8 - len(steps))
            key = call_key("bench-binary", workspace)
            cache.entry(key)
            action: Ask | Answer = (Ask(questions=[question + "0", question + "1"]) if left > 0 and not call
                                    else Answer(answer="done"))
            reply = Reply(action=action)
            cache.put(key, "bench-binary", reply, 0.0)
            record = {"kind": "call", "workspace": node, "policy": "bench-binary",
                      "input": workspace.model_dump(exclude={"context"}), "output": reply.action.model_dump(),
                      "usage": reply.usage.model_dump(), "latency": 0.0, "cached": False, "started": 0.0}
            node_line(node + 1 + call, record)
            if left > 0 and not call:
                steps.append((SubAnswer(question=question + "0", answer="done"),
                              SubAnswer(question=question + "1", answer="done")))
        SubAnswer(question=question, answer="done", status="ok")
        node_line(node, {"kind": "workspace", "question": question, "depth": left, "status": "ok"})
        edge_line(node, node + 1, {"kind": "delegate", "step": 0, "order": 0})
        node += 3
        if left > 0:
            stack += [(question + "0", left - 1), (question + "1", left - 1)]
    cache.close()
    assert Usage() == reply.usage
    return time.process_time() - began


def least_model_work(depth: int) -> float:
    """CPU seconds of the least the data model asks per policy call, for the same tree: a `Workspace`
    validated and dumped to JSON once (that text hashed for the cache key and written as the call's input
    in its trace line), the action's `Reply` validated and dumped once; per workspace its `SubAnswer` and
    its trace line. No cache store, no engine."""
    from hch.workspace import SubAnswer

    began = time.process_time()
    stack, lines = [("q", depth)], []
    while stack:
        question, left = stack.pop()
        steps: list[tuple[SubAnswer, ...]] = []
        for call in range(2 if left > 0 else 1):
            workspace = Workspace(question=question, depth=left, steps=tuple(steps), steps_left=8 - len(steps))
            seen = workspace.model_dump_json()
            hashlib.sha256(seen.encode()).hexdigest()
            action: Ask | Answer = (Ask(questions=[question + "0", question + "1"]) if left > 0 and not call
                                    else Answer(answer="done"))
            lines.append('{"node":{"input":' + seen + ',"output":' + Reply(action=action).model_dump_json() + "}}")
            if left > 0 and not call:
                steps.append((SubAnswer(question=question + "0", answer="done"),
                              SubAnswer(question=question + "1", answer="done")))
        SubAnswer(question=question, answer="done", status="ok")
        lines.append(json.dumps({"node": {"kind": "workspace", "question": question, "depth": left}}))
        if len(lines) > 1024:  # written out
            lines.clear()
        if left > 0:
            stack += [(question + "0", left - 1), (question + "1", left - 1)]
    return time.process_time() - began


def lower_bound(seconds: dict[str, float]) -> float:
    """What any engine on the mandated libraries with a call cache costs at least, x the floor: a task
    per node (the floor), the least data-model work and the call cache's own work, with nothing else."""
    parts = ("floor (asyncio.gather)", "  least data-model work, no store", "  call cache alone, no engine")
    return sum(seconds[part] for part in parts) / seconds["floor (asyncio.gather)"]


FLAT_COLUMNS = {
    "floor": "floor",  # asyncio.gather
    "engine": "headline",  # trace file streamed + a new call cache
    "no_cache": "no cache",  # the same run without the call cache
    "sqlite": "cache alone",  # the call cache's lookups and inserts for the same tree, no engine
}
"""The flat series' figures at each size: the headline, and the two halves it is made of."""


def streamed_run(depth: int, tmp: Path, index: int, cached: bool = True) -> None:
    """The flat series' run: the trace streamed to a new file and (if `cached`) a new call cache."""
    nodes = 2 ** (depth + 1) - 1
    cache = CallCache(tmp / f"flat-{depth}-{index}.sqlite") if cached else None
    try:
        result = hch.answer_sync("q", depth=depth, policy=Binary(), limits=Limits(max_nodes=nodes),
                                 trace_path=tmp / f"flat-{depth}-{index}.json", call_cache=cache, keep_trace=False)
    finally:
        if cache is not None:
            cache.close()
    assert result.summary.nodes == nodes, result.summary  # every node really expanded


def written_bytes() -> int | None:
    """Bytes this process has had written to storage so far (Linux's /proc/self/io; None elsewhere)."""
    try:
        lines = Path("/proc/self/io").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith("write_bytes:")), None)


def cache_alone(depth: int, tmp: Path, index: int, written: list[float]) -> None:
    """What the engine asks of a new call cache for the same tree, with no engine: per policy call a
    lookup that misses and a put of the reply under a SHA-256 key (committed every `BATCH_SIZE` puts: no
    event loop runs the engine's commit timer, whose batches are smaller).
    Appends to `written` the KiB written to storage per call (the database, its WAL and checkpoints)."""
    from hch.workspace import Reply

    calls, before = 3 * 2**depth - 2, written_bytes()  # two calls per inner workspace, one per leaf
    cache = CallCache(tmp / f"flat-{depth}-{index}.sqlite")
    reply = Reply(action=Answer(answer="done"))
    for call in range(calls):
        key = hashlib.sha256(f"bench-binary\x00{call}".encode()).hexdigest()
        cache.entry(key)
        cache.put(key, "bench-binary", reply, 0.0)
    cache.close()
    after = written_bytes()
    if before is not None and after is not None:
        written.append((after - before) / calls / 1024)


def flat_size(depth: int, repeats: int, tmp: Path) -> dict[str, Any]:
    """The flat series' figures at one size, µs per node, the least CPU time of `repeats` runs each."""
    nodes = 2 ** (depth + 1) - 1
    runs = iter(range(10**9))

    def clean() -> int:  # the last run's files go before the next run is timed
        for path in tmp.glob(f"flat-{depth}-*"):
            path.unlink()
        return next(runs)

    written: list[float] = []
    seconds = {
        "floor": cpu(repeats, lambda: asyncio.run(gather_floor("q", depth))),
        "engine": cpu(repeats, lambda index: streamed_run(depth, tmp, index), setup=clean),
        "no_cache": cpu(repeats, lambda index: streamed_run(depth, tmp, index, cached=False), setup=clean),
        "sqlite": cpu(repeats, lambda index: cache_alone(depth, tmp, index, written), setup=clean),
    }
    clean()
    return {"depth": depth, "nodes": nodes, "repeats": repeats, "x_floor": seconds["engine"] / seconds["floor"],
            **{f"{name}_us_per_node": value / nodes * 1e6 for name, value in seconds.items()},
            "cache_kib_written_per_call": min(written, default=None)}


def flat_series(depths: list[int], repeats: int, tmp: Path) -> dict[str, Any]:
    """The flat series: per-node CPU cost of the streamed headline from the smallest size to the largest,
    and of its parts. Sizes over 10^6 nodes are run once (minutes of CPU each)."""
    sizes = [flat_size(depth, 1 if 2 ** (depth + 1) > 10**6 else repeats, tmp) for depth in depths]
    print("flat series (CPU µs per node, same GC pacing for all)\n"
          "  headline: the trace streamed to its file (keep_trace=False) and a new call cache, at every size\n"
          "  no cache: the same runs without the call cache; cache alone: the call cache's lookups and inserts\n"
          "  for the same tree, no engine; floor: the asyncio.gather recursion; KiB/call: what the cache alone\n"
          "  had written to storage per call (rows, WAL frames, checkpoints, its index; a row is ~0.4 KiB)")
    print(f"  {'depth':>5}{'nodes':>9}{'runs':>5}" + "".join(f"{title:>{len(title) + 2}}" for title in
                                                            FLAT_COLUMNS.values()) + "  x floor  KiB/call")
    for size in sizes:
        kib = size["cache_kib_written_per_call"]
        print(f"  {size['depth']:>5}{size['nodes']:>9}{size['repeats']:>5}"
              + "".join(f"{size[name + '_us_per_node']:{len(title) + 2}.1f}" for name, title in FLAT_COLUMNS.items())
              + f"{size['x_floor']:9.2f}{'-' if kib is None else f'{kib:.1f}':>10}")
    first, last = sizes[0], sizes[-1]
    growth = {name: last[f"{name}_us_per_node"] / first[f"{name}_us_per_node"] for name in FLAT_COLUMNS}
    print(f"  per-node cost, {last['nodes']} vs {first['nodes']} nodes: "
          + ", ".join(f"{title} {growth[name]:.2f}x" for name, title in FLAT_COLUMNS.items()))
    print(f"target: flat per-node cost (streamed trace file + call cache), {last['nodes']} vs {first['nodes']} "
          f"nodes <= {FLAT}x: {growth['engine']:.2f}x {verdict(growth['engine'], FLAT)}")
    return {"config": "trace file streamed (keep_trace=False) + new call cache, at every size",
            "columns": FLAT_COLUMNS, "sizes": sizes, "target_flat": FLAT, "growth": growth,
            "flat": growth["engine"], "met": growth["engine"] <= FLAT}


def ice(python: str, depth: int, repeats: int) -> dict[str, Any] | None:
    """ICE's figures from `ice_tree.py` run by `python` (None when it cannot run there)."""
    script = Path(__file__).resolve().parent / "ice_tree.py"
    done = subprocess.run([python, str(script), str(depth), str(repeats)], capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        print(f"  ICE did not run with {python}: {done.stderr.strip().splitlines()[-1:]}")
        return None
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def depth_list(text: str) -> list[int]:
    """`--depths` and `--flat`: comma-separated tree depths, 1 to 24 (a one-line error otherwise)."""
    try:
        depths = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected depths like 9,13,16,19, not {text!r}") from None
    if not all(1 <= depth <= 24 for depth in depths):
        raise argparse.ArgumentTypeError(f"depths run from 1 to 24 (2^25 - 1 nodes), not {text!r}")
    return depths


def main() -> None:
    parse = parser(__doc__.splitlines()[0])
    parse.add_argument("--depths", type=depth_list, default=[9, 12, 15],
                       help="tree depths (a depth d has 2^(d+1)-1 nodes)")
    parse.add_argument("--repeats", type=positive, default=3, help="runs per configuration; the least CPU time counts")
    parse.add_argument("--ice-python", default=None, help="a Python with ought-ice==0.5.0 installed")
    parse.add_argument("--flat", type=depth_list, default=None,
                       help="only the flat series, at these depths (e.g. 9,13,16,19)")
    parse.add_argument("--flat-repeats", type=positive, default=3, help="runs per size below 10^6 nodes in --flat")
    args = parse.parse_args()
    if args.flat is not None:
        with tempfile.TemporaryDirectory() as tmp:
            series = flat_series(args.flat, args.flat_repeats, Path(tmp))
        write("overhead_flat", args.quick, args.out, {**series, "clock": "process_time",
                                                      "gc": "paced (hch.run.collector)"})
        return
    depths, repeats = ([5, 7], 1) if args.quick else (args.depths, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [measure(depth, repeats, Path(tmp)) for depth in depths]
        series = flat_series([5, 7], 1, Path(tmp)) if args.quick else None  # the flat series' code, tiny
    for size in sizes:
        print(f"full binary tree, depth {size['depth']}: {size['nodes']} workspaces (CPU µs per node)")
        for row in size["rows"]:
            print(f"  {row['config']:<34}{row['us_per_node']:8.1f} µs/node  ({row['x_floor']:.2f}x floor)")
    worst = max(size["headline_x_floor"] for size in sizes)
    least_mandated = min(size["mandated_x_floor"] for size in sizes)
    bound = min(size["lower_bound_x_floor"] for size in sizes)
    flat = sizes[-1]["headline_us_per_node"] / sizes[0]["headline_us_per_node"]
    print(f"target: trace file + call cache <= {TARGET}x floor at every size: worst {worst:.2f}x "
          f"{verdict(worst, TARGET)}")
    print(f"  (the pydantic, SQLite and JSON work an engine on the mandated libraries must do per node, with no "
          f"engine and no concurrency, is already {least_mandated:.2f}x the floor or more; a task per node, the "
          f"least data-model work and the call cache alone add up to {bound:.2f}x or more)")
    print(f"target: flat per-node cost, {sizes[-1]['nodes']} vs {sizes[0]['nodes']} nodes <= {FLAT}x: "
          f"{flat:.2f}x {verdict(flat, FLAT)}")
    ice_figures = ice(args.ice_python, depths[-1], repeats) if args.ice_python else None
    ice_ratio = None
    if ice_figures is not None:
        ice_ratio = ice_figures["traced_us_per_node"] / sizes[-1]["headline_us_per_node"]
        print(f"Ought's ICE {ice_figures['version']}, same tree (depth {depths[-1]}), its own run of the floor: "
              f"floor {ice_figures['floor_us_per_node']:.1f} µs/node, tracing off "
              f"{ice_figures['untraced_us_per_node']:.1f}, tracing on {ice_figures['traced_us_per_node']:.1f}")
        print(f"target: ICE with tracing >= {ICE_FACTOR:.0f}x hch's headline per node: {ice_ratio:.2f}x "
              f"{'ok' if ice_ratio >= ICE_FACTOR else 'MISSED'}")
    met = worst <= TARGET and flat <= FLAT and (ice_ratio is None or ice_ratio >= ICE_FACTOR)
    write("overhead", args.quick, args.out, {
        "sizes": sizes, "repeats": repeats, "clock": "process_time", "gc": "paced (hch.run.collector)",
        "target_x_floor": TARGET, "worst_headline_x_floor": worst, "least_mandated_x_floor": least_mandated,
        "least_lower_bound_x_floor": bound,
        "target_flat": FLAT, "flat": flat, "ice": ice_figures, "ice_x_headline": ice_ratio,
        "target_ice_factor": ICE_FACTOR, "met": met, **({"flat_series": series} if series else {}),
    })


if __name__ == "__main__":
    main()
