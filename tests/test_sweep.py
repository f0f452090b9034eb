from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import anyio
import pytest
from PIL import Image

from hch.call_cache import CallCache, call_key
from hch.errors import HchError
from hch.experts import ExpertPolicy
from hch.experts.noisy import NoisyExpertPolicy
from hch.policies.vote import vote
from hch.policy import Policy
from hch.question_set import Item
from hch.sweep import Outcome, RunRecord, SweepConfig, SweepError, load_runs, run_sweep
from hch.sweep_report import write_outputs
from hch.sweep_rows import aggregate
from hch.tasks import TASKS, get_task
from hch.workspace import Action, Reply, Workspace

pytestmark = pytest.mark.anyio

# A small case worked out by hand: the list expert adds two numbers per node and halves longer lists.
HAND = [
    Item(id="pair", question="What is the sum of 7, 8?", answer="15"),  # primitive: 1 node, 1 call
    Item(id="four", question="What is the sum of 1, 2, 3, 10?", answer="16"),  # root asks 2 halves: 3 nodes, 4 calls
    Item(id="badgold", question="What is the sum of 5, 5?", answer="11"),  # gold is wrong: never correct
    Item(id="nogold", question="What is the maximum of 1, 2, 3, 4?"),  # 3 nodes, 4 calls; cost and time only
]


def config(depths: list[int], votes: tuple[int, ...] = (1,), concurrency: int = 4) -> SweepConfig:
    return SweepConfig(source="test", questions=0, depths=depths, policy="expert", votes=list(votes),
                       concurrency=concurrency)


async def sweep(items: list[Item], out: Path, depths: list[int], policy: Policy | None = None,
                votes: tuple[int, ...] = (1,), concurrency: int = 4, call_cache: CallCache | None = None) -> Outcome:
    base = policy or ExpertPolicy()
    policies = {k: vote(k, base) for k in votes}
    return await run_sweep(items, config(depths, votes, concurrency), policies, out, call_cache=call_cache)


async def test_figures_match_a_case_worked_by_hand(tmp_path: Path) -> None:
    outcome = await sweep(HAND, tmp_path, [0, 1], concurrency=1)
    zero, one = aggregate(outcome.records)
    # n = 1: pair 15 ok, four 16 ok, badgold 10 != 11; nogold ungraded. 2/3 correct.
    assert (one.questions, one.graded, one.correct, one.guesses) == (4, 3, 2, 0)
    assert one.accuracy == pytest.approx(2 / 3)
    assert (one.ci_low, one.ci_high) == (pytest.approx(0.2077, abs=1e-4), pytest.approx(0.9385, abs=1e-4))
    assert (one.nodes_mean, one.nodes_median) == (2.0, 2.0)  # nodes 1, 3, 1, 3
    assert (one.calls_mean, one.calls_median) == (2.5, 2.5)  # calls 1, 4, 1, 4
    assert (one.calls_made, one.cache_hits) == (10, 0)
    # n = 0: the two 4-number questions are guesses (a guess of 16 is impossible: it is an even
    # pair sum times 2 only for pairs summing to 8, which 1, 2, 3, 10 lacks); pair is right.
    assert (zero.graded, zero.correct, zero.guesses) == (3, 1, 2)
    assert (zero.ci_low, zero.ci_high) == (pytest.approx(0.0615, abs=1e-4), pytest.approx(0.7923, abs=1e-4))
    assert (zero.nodes_mean, zero.calls_mean) == (1.0, 1.0)
    # n = 1 ran first; its two primitive roots fit depth 0 and were reused: 2 calls made, 2 hits
    assert (zero.calls_made, zero.cache_hits) == (2, 2)
    assert outcome.cross_depth_hits == 2
    by_id = {(r.id, r.depth): r for r in outcome.records}
    assert by_id["nogold", 1].correct is None and by_id["nogold", 1].answer == "4"
    assert by_id["pair", 0].subtree_hits == 1 and by_id["pair", 0].calls_made == 0 and by_id["pair", 0].calls == 1


@pytest.mark.parametrize("name", list(TASKS))
async def test_a_full_sweep_costs_little_more_than_its_deepest_run(tmp_path: Path, name: str) -> None:
    items = get_task(name).generate(24, seed=4)
    deepest = await sweep(items, tmp_path / "alone", [6])
    everything = await sweep(items, tmp_path / "all", list(range(7)))
    alone_calls = sum(r.calls_made for r in deepest.records)
    assert everything.calls_made <= 1.1 * alone_calls + 7 * len(items)
    same = {r.id: (r.answer, r.status) for r in everything.records if r.depth == 6}
    assert same == {r.id: (r.answer, r.status) for r in deepest.records}


class Gate:
    """The expert, recording the workspaces it finished; with `stop_at`, it hangs on that call."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.inner = ExpertPolicy()
        self.fingerprint = self.inner.fingerprint
        self.depth_stable = True
        self.stop_at, self.reached = stop_at, anyio.Event()
        self.finished: list[str] = []

    def check(self, question: str, context: str) -> None:
        self.inner.check(question, context)

    async def act(self, workspace: Workspace) -> Action | Reply:
        if self.stop_at is not None and len(self.finished) + 1 == self.stop_at:
            self.reached.set()
            await anyio.sleep_forever()
        action = await self.inner.act(workspace)
        self.finished.append(call_key(self.fingerprint, workspace))
        return action


async def test_an_interrupted_sweep_resumes_without_repeating_a_call(tmp_path: Path) -> None:
    items = get_task("union-find").generate(12, seed=2)
    reference = await sweep(items, tmp_path / "reference", list(range(5)))
    first = Gate(stop_at=reference.calls_made // 2)
    with _closing(CallCache(tmp_path / "cache.sqlite")) as cache:
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: sweep(items, tmp_path / "out", list(range(5)), policy=first, call_cache=cache))
            await first.reached.wait()
            group.cancel_scope.cancel()
    done = load_runs(tmp_path / "out")
    assert 0 < len(done) < len(items) * 5
    second = Gate()
    with _closing(CallCache(tmp_path / "cache.sqlite")) as cache:
        outcome = await sweep(items, tmp_path / "out", list(range(5)), policy=second, call_cache=cache)
    assert outcome.resumed == len(done) and outcome.ran == len(items) * 5 - len(done)
    assert not set(first.finished) & set(second.finished)  # nothing finished before is asked again
    assert [(r.id, r.depth, r.answer, r.status) for r in outcome.records] == [
        (r.id, r.depth, r.answer, r.status) for r in reference.records
    ]
    again = Gate()
    rerun = await sweep(items, tmp_path / "out", list(range(5)), policy=again)
    assert (rerun.ran, again.finished) == (0, [])


class _closing:
    def __init__(self, cache: CallCache) -> None:
        self.cache = cache

    def __enter__(self) -> CallCache:
        return self.cache

    def __exit__(self, *exc: object) -> None:
        self.cache.close()


async def test_noise_compounds_with_depth_and_voting_repairs_it(tmp_path: Path) -> None:
    items = get_task("permutation-powering").generate(60, seed=1)
    noisy = NoisyExpertPolicy(noise=0.05, seed="1")
    outcome = await sweep(items, tmp_path, [0, 5], policy=noisy, votes=(1, 5))
    buckets = {(r.votes, r.required_depth): r for r in aggregate(outcome.records, by_bucket=True) if r.depth == 5}
    alone = [buckets[1, d].accuracy or 0.0 for d in range(6)]
    assert alone[0] + alone[1] > alone[4] + alone[5] + 0.5  # more look-ups, more slips that reach the root
    voted = [buckets[5, d].accuracy or 0.0 for d in range(6)]
    assert all(v >= a for v, a in zip(voted, alone, strict=True))
    rows = {(r.votes, r.depth): r for r in aggregate(outcome.records)}
    assert (rows[5, 5].accuracy or 0) > (rows[1, 5].accuracy or 0) + 0.2
    assert (rows[1, 0].accuracy or 0) < (rows[1, 5].accuracy or 0)


async def test_outputs_are_written_and_the_plot_is_a_valid_image(tmp_path: Path) -> None:
    items = get_task("wildcard-search").generate(8, seed=1, max_depth=3)
    cfg = config([0, 1, 2, 3], votes=(1, 3))
    policies = {k: vote(k, NoisyExpertPolicy(noise=0.1, seed="1")) for k in (1, 3)}
    outcome = await run_sweep(items, cfg, policies, tmp_path)
    paths = write_outputs(tmp_path, cfg, outcome)
    png = paths["png"].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(paths["png"]) as image:
        image.verify()
    import matplotlib.image

    assert matplotlib.image.imread(paths["png"]).shape[0] > 100
    assert ElementTree.parse(paths["svg"]).getroot().tag.endswith("svg")
    summary = paths["summary"].read_text().splitlines()
    assert summary[0].startswith("votes,depth,required_depth,questions,graded,correct,accuracy,ci_low,ci_high")
    assert len(summary) == 1 + 2 * 4
    assert len(paths["buckets"].read_text().splitlines()) == 1 + 2 * 4 * 4
    report = json.loads(paths["json"].read_text())
    assert report["config"]["depths"] == [0, 1, 2, 3] and report["config"]["votes"] == [1, 3]
    assert {"hch", "python", "matplotlib", "pydantic"} <= set(report["versions"])
    assert report["totals"]["runs"] == 64 and len(report["rows"]) == 8
    for record in outcome.records:
        assert (tmp_path / record.trace).exists()
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 64 and RunRecord.model_validate_json(lines[0])


async def test_an_output_directory_of_another_sweep_is_refused(tmp_path: Path) -> None:
    await sweep(HAND[:2], tmp_path, [0])
    with pytest.raises(SweepError, match="holds a different sweep"):
        await sweep(HAND[:3], tmp_path, [0])
    await sweep(HAND[:2], tmp_path, [0, 1])  # more depths of the same sweep are fine
    await sweep(HAND[:2], tmp_path, [0, 1], votes=(1, 3))  # and more voting variants
    with pytest.raises(SweepError, match="holds a different sweep"):
        await sweep(HAND[:2], tmp_path, [0], policy=NoisyExpertPolicy(noise=0.1))


async def test_a_question_the_policy_cannot_take_fails_before_any_run(tmp_path: Path) -> None:
    with pytest.raises(HchError, match="question odd: the offline expert cannot parse"):
        await sweep([Item(id="odd", question="Why?")], tmp_path, [0])
    assert not (tmp_path / "runs.jsonl").exists()


async def test_a_torn_last_line_is_dropped_and_rerun(tmp_path: Path) -> None:
    await sweep(HAND, tmp_path, [1])
    path = tmp_path / "runs.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    assert len(load_runs(tmp_path)) == 3
    again = await sweep(HAND, tmp_path, [1])
    assert (again.resumed, again.ran) == (3, 1)


async def test_a_set_without_gold_is_plotted_for_cost_only(tmp_path: Path) -> None:
    import warnings

    items = [Item(id="a", question="What is the sum of 1, 2, 3?"), Item(id="b", question="What is 2 * 3?")]
    cfg = config([0, 1])
    outcome = await run_sweep(items, cfg, {1: ExpertPolicy()}, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an empty legend
        paths = write_outputs(tmp_path, cfg, outcome)
    assert all(r.accuracy is None and r.graded == 0 for r in aggregate(outcome.records))
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
