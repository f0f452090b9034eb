"""The IDA loop: table X on a tiny permutation-powering universe, resuming after a crash, the mlp path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import anyio
import pytest

from hch.experts import ExpertPolicy
from hch.learning import MLPLearner, TableLearner
from hch.learning.ida import AmpRun, Hooks, IdaConfig, IdaError, Study, amplified, question_sets, run_ida
from hch.learning.report import rows, write_outputs
from hch.run.call_cache import CallCache, call_key
from hch.workspace import Action, Answer, Workspace

TINY = IdaConfig(task="permutation-powering", learner="table", rounds=2, questions=0, eval_questions=60,
                 instances=1, seed=3, max_depth=2)


class CountingExpert:
    """The honest expert, counting every workspace it acts on (same fingerprint: shares the cache)."""

    def __init__(self) -> None:
        self.inner = ExpertPolicy()
        self.seen: Counter[str] = Counter()

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    async def act(self, workspace: Workspace) -> Action:
        self.seen[call_key(self.fingerprint, workspace)] += 1
        return await self.inner.act(workspace)


class Crash(Exception):
    pass


def study(out: Path, h: object = None, hooks: Hooks | None = None, config: IdaConfig = TINY) -> Study:
    cache = CallCache(out.parent / f"{out.name}.sqlite")
    try:
        return anyio.run(lambda: run_ida(config, TableLearner(), h or ExpertPolicy(), out, cache, hooks))  # type: ignore[arg-type]
    finally:
        cache.close()


def accuracy(found: Study) -> dict[tuple[str, int, int | None], float]:
    return {(r.kind, r.round, r.required_depth): r.accuracy for r in rows(found)}


def test_table_ida_reaches_every_class_without_gold(tmp_path: Path) -> None:
    found = study(tmp_path / "ida")
    table = accuracy(found)
    assert all(table["amplification", 2, depth] == 1.0 for depth in (0, 1, 2))
    assert table["amplification", 0, None] < 0.1  # X_0 only guesses
    assert table["amplification", 1, 2] < 0.2  # one round teaches classes 0 and 1 only
    # every evaluation question is in the universe the table was trained on, and the report says so
    assert found.eval_in_training == len(found.evaluation) == 60
    assert all(r.eval_in_training == r.questions and r.ci_method == "wilson" for r in rows(found))  # one instance
    # no label was the gold answer by construction: labels come from Amp runs, which never saw gold
    runs = [run for r in found.runs.values() for run in r]
    assert runs and all((tmp_path / "ida" / run.trace).exists() for run in runs)
    paths = write_outputs(found)
    assert all(path.exists() for path in paths.values())


def test_amp_puts_x_at_depth_0_and_h_above() -> None:
    x, h = TableLearner().fit([]), ExpertPolicy()
    amp = amplified(h, x)
    assert amp.at(0, False) is x and amp.at(1, True) is h and amp.at(2, False) is h


def test_a_crash_mid_round_resumes_to_the_same_result_repeating_no_h_call(tmp_path: Path) -> None:
    clean = accuracy(study(tmp_path / "clean"))
    h = CountingExpert()
    made: list[AmpRun] = []

    def crash_after_some(run: AmpRun) -> None:
        made.append(run)
        if len(made) == 300:  # in round 0 (512 questions a round)
            raise Crash

    with pytest.raises(Crash):
        study(tmp_path / "resumed", h, Hooks(run=crash_after_some))
    first = sum(h.seen.values())
    assert first > 0
    resumed = study(tmp_path / "resumed", h)
    assert accuracy(resumed) == clean
    assert max(h.seen.values()) == 1  # no workspace was shown to H twice across the crash
    fresh = CountingExpert()
    study(tmp_path / "again", fresh)
    assert sum(h.seen.values()) == sum(fresh.seen.values())


def test_a_finished_study_reruns_without_any_h_call(tmp_path: Path) -> None:
    study(tmp_path / "ida")
    h = CountingExpert()
    again = study(tmp_path / "ida", h, config=TINY.model_copy(update={"concurrency": 3}))
    assert sum(h.seen.values()) == 0 and accuracy(again)


def test_another_study_in_the_same_directory_is_refused(tmp_path: Path) -> None:
    study(tmp_path / "ida", config=TINY.model_copy(update={"rounds": 1}))
    with pytest.raises(IdaError, match="different IDA study"):
        study(tmp_path / "ida", config=TINY.model_copy(update={"seed": 4}))


def test_more_rounds_continue_a_finished_study(tmp_path: Path) -> None:
    study(tmp_path / "ida", config=TINY.model_copy(update={"rounds": 1}))
    longer = study(tmp_path / "ida", config=TINY)
    assert accuracy(longer)["amplification", 2, 2] == 1.0


def test_held_out_questions_share_no_instance_with_training() -> None:
    config = IdaConfig(task="wildcard-search", learner="mlp", rounds=1, questions=40, eval_questions=20, seed=1)
    train, evaluation = question_sets(config)
    assert {i.context for i in train}.isdisjoint({i.context for i in evaluation})
    assert len(train) == 40 and len(evaluation) == 20
    with pytest.raises(IdaError, match="--questions of 1 or more"):
        question_sets(config.model_copy(update={"questions": 0}))


def test_mlp_ida_runs_on_held_out_instances(tmp_path: Path) -> None:
    config = IdaConfig(task="wildcard-search", learner="mlp", rounds=1, questions=40, eval_questions=60, seed=1,
                       max_depth=2)  # 60 evaluation questions: 6 instances, enough for a bootstrap
    cache = CallCache(tmp_path / "cache.sqlite")
    try:
        found = anyio.run(lambda: run_ida(config, MLPLearner(hidden=8, epochs=5), ExpertPolicy(), tmp_path / "m",
                                          cache))
    finally:
        cache.close()
    table = rows(found)
    assert {(r.kind, r.round) for r in table} == {(k, t) for k in ("amplification", "supervised") for t in (0, 1)}
    assert found.eval_in_training == 0
    assert (tmp_path / "m" / "models" / "amp-1.joblib").exists()
    labelled = next(r for r in table if r.kind == "amplification" and r.round == 1 and r.required_depth is None)
    assert labelled.h_calls > 0 and labelled.labels > 0 and labelled.ci_method.startswith("bootstrap/")


def test_in_amp_x_reads_the_facts_and_h_sees_only_the_header() -> None:
    from hch.learning import LearnedPolicy
    from hch.run.engine import answer

    seen: dict[str, list[str]] = {"x": [], "h": []}

    class SpyX(LearnedPolicy):
        async def act(self, workspace: Workspace) -> Answer:
            seen["x"].append(workspace.context)
            return await super().act(workspace)

    class SpyH(CountingExpert):
        async def act(self, workspace: Workspace) -> Action:
            seen["h"].append(workspace.context)
            return await super().act(workspace)

    train, _ = question_sets(TINY)
    item = next(i for i in train if i.required_depth == 2)
    base = TableLearner().fit([])
    x = SpyX(base.model, base.learner, base.data, base.size)
    anyio.run(lambda: answer(item.question, depth=1, policy=amplified(SpyH(), x), context=item.context, facts="hidden"))
    assert seen["x"] and all(context == item.context for context in seen["x"])
    assert seen["h"] and all(context == item.context.split("\n")[0] for context in seen["h"])


def test_any_policy_can_be_h_an_llm_included_and_it_never_sees_a_fact(tmp_path: Path) -> None:
    import re

    from hch.policies.llm import LLMPolicy
    from hch.testing.openai_server import OpenAIServer, Seen, Step, question_of, subanswers_of

    def permutation_h(seen: Seen) -> Step:
        match = re.fullmatch(r"What is sigma\^(\d+)\((\w+)\)\?", question_of(seen))
        assert match is not None
        k, x = int(match[1]), match[2]
        answers = subanswers_of(seen)
        if not answers:
            return Step.ask(f"What is sigma^{k // 2}({x})?")
        if len(answers) == 1:
            return Step.ask(f"What is sigma^{k // 2}({answers[0]})?")
        if len(answers) == 2 and k % 2:
            return Step.ask(f"What is sigma^1({answers[1]})?")
        return Step.answer(answers[-1])

    config = TINY.model_copy(update={"rounds": 1, "max_depth": 1, "eval_questions": 40})
    with OpenAIServer(permutation_h) as server:
        h = LLMPolicy(model="scripted-h", base_url=server.base_url)
        found = anyio.run(lambda: run_ida(config, TableLearner(), h, tmp_path / "ida"))
        users = [seen.last_user for seen in server.requests]
    fact = re.compile(r"^[a-h]{2} -> [a-h]{2}$", re.MULTILINE)
    assert users and not any(fact.search(text) for text in users)  # the header only, never a fact line
    assert found.config.h_fingerprint.startswith("llm:scripted-h@127.0.0.1")
    assert all(r.accuracy == 1.0 for r in rows(found) if r.kind == "amplification" and r.round == 1)


DRIVER = """
import os, signal, sys
from pathlib import Path
import anyio
from hch.run.call_cache import CallCache, call_key
from hch.experts import ExpertPolicy
from hch.learning import TableLearner
from hch.learning.ida import Hooks, IdaConfig, run_ida

out, log, kill_after = Path(sys.argv[1]), open(sys.argv[2], "a"), int(sys.argv[3])

class Logged(ExpertPolicy):
    async def act(self, workspace):
        log.write(call_key(self.fingerprint, workspace) + "\\n")
        log.flush()
        return await super().act(workspace)

made = []
def run(record):
    made.append(record)
    if len(made) == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

config = IdaConfig.model_validate_json(sys.argv[4])
cache = CallCache(out.parent / "cache.sqlite")
anyio.run(lambda: run_ida(config, TableLearner(), Logged(), out, cache, Hooks(run=run)))
cache.close()
"""


def test_sigkill_mid_round_then_a_rerun_gives_the_same_result_and_repeats_no_h_call(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = TINY.model_copy(update={"concurrency": 16})  # other Amp runs are in flight (half-written) at the kill
    (tmp_path / "driver.py").write_text(DRIVER)

    def drive(kill_after: int) -> int:
        return subprocess.run(
            [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "ida"), str(tmp_path / "h.log"),
             str(kill_after), config.model_dump_json()], timeout=300,
        ).returncode

    assert drive(700) == -9  # SIGKILL in round 1 (512 Amp runs a round)
    labels = tmp_path / "ida" / "rounds" / "round-1" / "labels.jsonl"
    assert len(labels.read_text().splitlines()) == 700 - 512
    assert drive(0) == 0
    calls = (tmp_path / "h.log").read_text().splitlines()
    assert calls and len(calls) == len(set(calls))  # no H call made twice across the kill
    h = CountingExpert()
    resumed = study(tmp_path / "ida", h, config=config)  # everything is done: read back, no H call
    assert sum(h.seen.values()) == 0
    assert accuracy(resumed) == accuracy(study(tmp_path / "clean"))


class WrongH:
    """An H that answers every question at once with a name no permutation has (never a guess)."""

    fingerprint = "wrong-h"

    def __init__(self) -> None:
        self.contexts: list[str] = []

    async def act(self, workspace: Workspace) -> Answer:
        self.contexts.append(workspace.context)
        return Answer(answer="zz")


def test_amplification_labels_are_what_amp_answered_never_gold_and_supervised_gets_as_many_gold(
    tmp_path: Path,
) -> None:
    h = WrongH()
    found = study(tmp_path / "ida", h, config=TINY.model_copy(update={"rounds": 1}))
    train = {item.id: item for item in found.train}
    runs = found.runs[0]
    # the environment answers sigma^0 and sigma^1 at the root (class 0); every other label is H's wrong answer
    assert {r.label for r in runs if train[r.id].required_depth != 0} == {"zz"}
    assert h.contexts and all(context == train[runs[0].id].context.split("\n")[0] for context in h.contexts)
    assert found.fits["amplification", 1].examples == found.fits["supervised", 1].examples == len(runs)
    assert found.fits["amplification", 1].fingerprint != found.fits["supervised", 1].fingerprint
    table = accuracy(found)
    assert table["amplification", 1, 0] == 1.0 and table["amplification", 1, 1] == table["amplification", 1, 2] == 0.0
    assert all(table["supervised", 1, depth] == 1.0 for depth in (0, 1, 2))


def test_an_amp_trace_replays_from_its_recording_x_calls_included(tmp_path: Path) -> None:
    from hch.record.format import load
    from hch.review.replay import replay

    found = study(tmp_path / "ida", config=TINY.model_copy(update={"rounds": 2}))
    x_1 = found.fits["amplification", 1].fingerprint
    with_x = [r for r in found.runs[1] if r.x_calls > 0][:20]
    assert with_x
    for run in with_x:
        recorded = load(tmp_path / "ida" / run.trace)
        assert any(data["policy"] == x_1 for _, data in recorded.calls())
        report, _ = anyio.run(lambda: replay(recorded))  # noqa: B023
        assert report.reproduced and not report.unserved and report.answer == run.label


def test_every_file_a_study_writes_is_renamed_into_place_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import spy_on_renames

    replaced = spy_on_renames(monkeypatch)
    write_outputs(study(tmp_path / "ida"))
    written = {p.name for p in (tmp_path / "ida").rglob("*") if p.is_file()}
    assert {"config.json", "complete.json", "rounds.csv", "ida.json", "plot.png", "plot.svg"} <= set(replaced)
    appended = {"labels.jsonl"}  # an append-only log, like a sweep's runs.jsonl: a torn last line is dropped on resume
    assert written - appended <= set(replaced), written - appended - set(replaced)
    assert not [p for p in (tmp_path / "ida").rglob("*") if p.name.endswith(".tmp")]
