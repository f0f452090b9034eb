from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from helpers import FunctionPolicy, trace_data

from hch.errors import HchError, Stopped
from hch.experts import ExpertPolicy
from hch.experts.noisy import NoisyExpertPolicy
from hch.policies.callable import CallablePolicy
from hch.policies.vote import vote
from hch.record.trace import Trace
from hch.run.call_cache import CallCache, call_key
from hch.run.policy import Policy
from hch.study.question_set import Item
from hch.study.rows import aggregate
from hch.study.sweep import Outcome, SweepConfig, SweepError, guess_on_path, load_runs, run_sweep, spent_in
from hch.tasks import TASKS, get_task
from hch.workspace import Action, Answer, Ask, Reply, Usage, Workspace

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
async def test_an_early_guess_sweep_costs_little_more_than_its_deepest_run(tmp_path: Path, name: str) -> None:
    items = get_task(name).generate(24, seed=4)
    early = ExpertPolicy(early_guess=True)
    deepest = await sweep(items, tmp_path / "alone", [6], policy=early)
    everything = await sweep(items, tmp_path / "all", list(range(7)), policy=early)
    alone_calls = sum(r.calls_made for r in deepest.records)
    assert everything.calls_made <= 1.1 * alone_calls + 7 * len(items)
    same = {r.id: (r.answer, r.status) for r in everything.records if r.depth == 6}
    assert same == {r.id: (r.answer, r.status) for r in deepest.records}


class Distinct:
    """The honest expert, counting how often each distinct workspace is acted on."""

    def __init__(self) -> None:
        self.inner = ExpertPolicy()
        self.fingerprint = self.inner.fingerprint
        self.depth_stable = True
        self.seen: Counter[str] = Counter()

    async def act(self, workspace: Workspace) -> Action:
        self.seen[call_key(self.fingerprint, workspace)] += 1
        return await self.inner.act(workspace)


@pytest.mark.parametrize("name", list(TASKS))
async def test_an_honest_full_sweep_repeats_no_call_and_agrees_with_its_deepest_run(tmp_path: Path, name: str) -> None:
    items = get_task(name).generate(12, seed=4)
    deepest = await sweep(items, tmp_path / "alone", [6])
    counting = Distinct()
    everything = await sweep(items, tmp_path / "all", list(range(7)), policy=counting)
    assert everything.calls_made == sum(counting.seen.values()) > 0
    assert max(counting.seen.values()) == 1  # the subtree cache serves every repeated workspace
    same = {r.id: (r.answer, r.status) for r in everything.records if r.depth == 6}
    assert same == {r.id: (r.answer, r.status) for r in deepest.records}


@pytest.mark.parametrize(
    "name", ["permutation-powering", "sequential-assignments", "wildcard-search", "shortest-path", "union-find"]
)
async def test_with_hidden_facts_each_paper_task_is_exact_from_its_required_depth_and_guesses_below(
    tmp_path: Path, name: str
) -> None:
    items = get_task(name).generate(10, seed=6, max_depth=4, facts="hidden")
    settings = SweepConfig(source="test", questions=0, depths=list(range(6)), policy="expert", facts="hidden")
    outcome = await run_sweep(items, settings, {1: ExpertPolicy()}, tmp_path)
    assert len(outcome.records) == 60 and len({r.required_depth for r in outcome.records}) >= 3
    for record in outcome.records:
        assert record.required_depth is not None
        if record.depth >= record.required_depth:
            assert (record.correct, record.status) == (True, "ok"), record
        else:
            assert record.status == "guess", record
    assert json.loads((tmp_path / "config.json").read_text())["facts"] == "hidden"
    trace = trace_data(tmp_path / outcome.records[-1].trace)
    assert trace["graph"]["facts"] == "hidden"
    shown = SweepConfig(source="test", questions=0, depths=list(range(6)), policy="expert")
    with pytest.raises(SweepError, match="holds a different sweep"):
        await run_sweep(items, shown, {1: ExpertPolicy()}, tmp_path)


async def test_hidden_facts_refuse_questions_without_a_tasks_facts(tmp_path: Path) -> None:
    settings = SweepConfig(source="test", questions=0, depths=[1], policy="expert", facts="hidden")
    with pytest.raises(SweepError, match="question pair: facts hidden needs a task's facts"):
        await run_sweep(HAND, settings, {1: ExpertPolicy()}, tmp_path)


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
    assert path.read_text().endswith("}\n") and len(load_runs(tmp_path)) == 4  # not glued to the torn line
    third = await sweep(HAND, tmp_path, [1])  # so a resume after that resume still reads every line
    assert (third.resumed, third.ran) == (4, 0)


def guessing_h(workspace: Workspace) -> Ask | Answer | str:
    """"total?" adds "a" and "b"; "a" is only ever guessed (a lucky 2), "b" is 3; "plain?" is 7."""
    if workspace.question == "total?":
        if not workspace.answers:
            return Ask(questions=["a", "b"])
        return str(sum(int(sub.answer) for sub in workspace.answers))
    return {"a": Answer(answer="2", guess=True), "b": "3", "plain?": "7"}[workspace.question]


async def test_a_right_answer_with_a_guess_behind_it_is_not_guess_free(tmp_path: Path) -> None:
    items = [Item(id="total", question="total?", answer="5"), Item(id="plain", question="plain?", answer="7")]
    outcome = await sweep(items, tmp_path, [1], policy=CallablePolicy(guessing_h, "guessing@1"))
    runs = {r.id: r for r in outcome.records}
    assert (runs["total"].correct, runs["total"].status, runs["total"].guess_on_path) == (True, "ok", True)
    assert (runs["plain"].correct, runs["plain"].guess_on_path) == (True, False)
    (row,) = aggregate(outcome.records)
    assert (row.accuracy, row.guess_free, row.guess_free_accuracy, row.guessed_on_path) == (1.0, 1, 0.5, 1)
    assert row.guesses == 0  # no root guessed: the root-status count misses the lucky guess


def workspace(trace: Trace, status: str) -> int:
    return trace.add_node("workspace", status=status)


def test_guess_on_path_follows_delegate_and_reuse_edges_from_the_root() -> None:
    trace = Trace()
    root, child, reused, _stray = (workspace(trace, s) for s in ("ok", "ok", "guess", "guess"))
    call = trace.add_node("call", status="guess")  # not a workspace: never counts
    trace.add_edge(root, call, "call")
    trace.add_edge(root, child, "delegate", step=0, order=0)
    assert not guess_on_path(trace)  # the guessing workspaces are not reachable from the root
    trace.add_edge(child, reused, "reuse", step=0, order=0)
    assert guess_on_path(trace)
    lone = Trace()
    workspace(lone, "guess")
    assert guess_on_path(lone)  # the root's own guess


async def test_a_vote_of_five_counts_five_invocations_per_call(tmp_path: Path) -> None:
    outcome = await sweep(HAND, tmp_path, [0, 1], votes=(1, 5))
    runs = {(r.votes, r.id, r.depth): r for r in outcome.records}
    for (votes, question, depth), run in runs.items():
        assert run.invocations == votes * run.calls and run.invocations_made == votes * run.calls_made
        if votes == 5:
            alone = runs[1, question, depth]
            assert (run.calls, run.invocations) == (alone.calls, 5 * alone.invocations)
    assert outcome.invocations_made == sum(r.invocations_made for r in outcome.records) > outcome.calls_made


async def test_task_runs_record_their_instance(tmp_path: Path) -> None:
    items = get_task("wildcard-search").generate(12, seed=3, max_depth=2)
    outcome = await sweep(items, tmp_path, [2])
    instances = {item.id: item.instance for item in items}
    assert all(r.instance == instances[r.id] is not None for r in outcome.records)
    assert len({r.instance for r in outcome.records}) == 2  # ten questions per instance


async def test_runs_recorded_before_invocations_were_counted_are_completed_from_their_traces(tmp_path: Path) -> None:
    first = await sweep(HAND, tmp_path, [1], votes=(1, 3))
    path = tmp_path / "runs.jsonl"
    old = [json.loads(line) for line in path.read_text().splitlines()]
    for data in old:
        for key in ("invocations", "invocations_made", "guess_on_path", "instance"):
            del data[key]
    path.write_text("".join(json.dumps(data) + "\n" for data in old))
    done = load_runs(tmp_path)
    assert sorted(done.values(), key=lambda r: (r.votes, r.id)) == sorted(first.records, key=lambda r: (r.votes, r.id))


# -- names on disk and the configuration file (issue 14, classes 3 and 9) ---------------------------

ODD_IDS = ["", ".", "..", "A", "a", "a/b", "a_b", "a\\b", "../escape", ".hidden", "x" * 200, "x" * 201, "CON", "é"]


async def test_question_ids_never_share_a_trace_folder_or_leave_the_output(tmp_path: Path) -> None:
    items = [Item(id=name, question=f"What is the sum of {i}, 1?", answer=str(i + 1)) for i, name in enumerate(ODD_IDS)]
    out = tmp_path / "out"
    outcome = await sweep(items, out, [0])
    assert outcome.ran == len(ODD_IDS) and all(r.correct for r in outcome.records)
    folders = {Path(r.trace).parent for r in outcome.records}
    assert len({str(f).casefold() for f in folders}) == len(ODD_IDS)  # distinct even on case-folding systems
    for record in outcome.records:
        path = (out / record.trace).resolve()
        assert path.is_relative_to(out.resolve()) and path.parent.parent.name == "votes-1"
        assert not path.parent.name.startswith(".")
    again = await sweep(items, out, [0])
    assert (again.resumed, again.ran) == (len(ODD_IDS), 0)


async def test_ids_whose_folders_would_clash_are_refused_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hch.study import sweep as sweeping

    monkeypatch.setattr(sweeping, "safe_name", lambda text: text.lower())  # as if two names clashed
    items = [Item(id="Q", question="What is the sum of 1, 2?"), Item(id="q", question="What is the sum of 2, 2?")]
    with pytest.raises(SweepError, match="'Q' and 'q' would share one trace folder"):
        await sweep(items, tmp_path, [0])
    assert not (tmp_path / "runs.jsonl").exists()


@pytest.mark.parametrize("torn", ["", "   \n", "\n\n"])
async def test_an_emptied_configuration_does_not_block_resume(tmp_path: Path, torn: str) -> None:
    first = await sweep(HAND, tmp_path, [0, 1])
    (tmp_path / "config.json").write_text(torn)  # what a crash during a non-atomic write left
    again = await sweep(HAND, tmp_path, [0, 1])
    assert (again.resumed, again.ran) == (first.ran, 0)
    assert SweepConfig.model_validate_json((tmp_path / "config.json").read_text()).depths == [0, 1]


async def test_an_emptied_configuration_of_another_sweep_is_still_refused(tmp_path: Path) -> None:
    await sweep(HAND, tmp_path, [0])
    (tmp_path / "config.json").write_text("")
    with pytest.raises(SweepError, match="runs of another sweep"):
        await sweep(HAND, tmp_path, [0], policy=NoisyExpertPolicy(noise=0.1))


@pytest.mark.parametrize("garbage", ["{", "[]", '{"source": 1}', "\x00\x00"])
async def test_a_corrupt_configuration_says_how_to_recover_in_one_line(tmp_path: Path, garbage: str) -> None:
    await sweep(HAND, tmp_path, [0])
    (tmp_path / "config.json").write_text(garbage)
    with pytest.raises(SweepError) as info:
        await sweep(HAND, tmp_path, [0])
    message = str(info.value)
    assert "\n" not in message and f"delete {tmp_path / 'config.json'} and rerun to resume" in message
    (tmp_path / "config.json").unlink()
    again = await sweep(HAND, tmp_path, [0])  # as the message says
    assert again.ran == 0


async def test_every_output_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each output file is renamed into place whole: the rename is the only way a file appears."""
    from helpers import spy_on_renames

    from hch.study.report import write_outputs

    replaced = spy_on_renames(monkeypatch)

    outcome = await sweep(HAND[:2], tmp_path, [0, 1])
    write_outputs(tmp_path, config([0, 1]), outcome, plot=True)
    assert {"config.json", "summary.csv", "buckets.csv", "sweep.json", "plot.png", "plot.svg"} <= set(replaced)
    assert sum(name.startswith("depth-") for name in replaced) == 4  # the traces
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


async def test_a_run_that_stops_the_sweep_is_its_own_error_not_a_group(tmp_path: Path) -> None:
    from hch.errors import NodeFailed, RunAborted

    class Refusing:
        fingerprint = "refusing"

        async def act(self, workspace: Workspace) -> Action | Reply:
            raise RunAborted("the server rejected the API key")

    with pytest.raises(RunAborted, match="rejected the API key"):
        await sweep(HAND[:2], tmp_path / "a", [0], policy=Refusing())  # type: ignore[arg-type]

    class Failing:
        fingerprint = "failing"

        async def act(self, workspace: Workspace) -> Action | Reply:
            raise ValueError("broken")

    items = HAND[:2]
    with pytest.raises(NodeFailed, match="policy raised ValueError: broken"):
        await run_sweep(items, config([0]), {1: Failing()}, tmp_path / "b", fail_fast=True)  # type: ignore[dict-item]


async def test_an_interrupted_run_still_counts_what_it_spent_and_a_person_quitting_stops_the_sweep(
    tmp_path: Path,
) -> None:
    async def spend_then_wait(ws: Workspace) -> Reply:
        if not ws.steps and ws.depth > 0:
            return Reply(action=Ask(questions=["What is the sum of 1, 2?"]), usage=Usage(prompt_tokens=7, cost=0.5))
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    items = HAND[:1]
    async with anyio.create_task_group() as group:  # Ctrl-C once the first call was paid for
        group.start_soon(lambda: run_sweep(items, config([1]), {1: FunctionPolicy(spend_then_wait)}, tmp_path))
        await wait_all_tasks_blocked()
        group.cancel_scope.cancel()
    assert spent_in(tmp_path) == (7, 0.5) and load_runs(tmp_path) == {}  # counted, and not taken as finished

    async def quit_at_once(ws: Workspace) -> Reply:
        raise Stopped("you quit at the prompt")

    with pytest.raises(Stopped):  # the person's Stopped, not an exception group
        await run_sweep(items, config([1]), {1: FunctionPolicy(quit_at_once, "quitter")}, tmp_path / "q")


async def test_runs_not_made_are_all_counted_when_the_question_started_first_finishes_last(tmp_path: Path) -> None:
    # two questions at once: the first one's call waits until everything else is done, the second's spends
    # the whole budget, so the last two are not made while the first is still running
    async def first_waits_second_spends(ws: Workspace) -> Reply:
        if ws.question == HAND[0].question:
            await wait_all_tasks_blocked()
        return Reply(action=Answer(answer="15"), usage=Usage(prompt_tokens=1, cost=1.0))

    cfg = config([0], concurrency=2).model_copy(update={"max_cost": 1.0})
    outcome = await run_sweep(HAND, cfg, {1: FunctionPolicy(first_waits_second_spends)}, tmp_path)
    assert outcome.ran == 2 and outcome.not_run == 2
