"""hch distill's data: pairs and chat examples from traces, journals and sweeps; filters, split, errors."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from hch.experts import ExpertPolicy
from hch.learning.distill import DistillError, Options, action_json, distill, split_of
from hch.policies import presets
from hch.policies.llm import LLMPolicy
from hch.run.engine import answer
from hch.study.sweep import SweepConfig, run_sweep
from hch.tasks import get_task
from hch.testing.openai_server import OpenAIServer, hch_responder

KEY = "sk-test-SECRET-distill-must-never-be-written-42"
TREE: dict[str, list[str] | str] = {
    "What is 1+2+3+4?": ["What is 1+2?", "What is 3+4?"], "What is 1+2?": "3", "What is 3+4?": "7",
}


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def sweep(out: Path, facts: str = "hidden", count: int = 12) -> Path:
    task = get_task("permutation-powering")
    items = task.generate(count, 5, max_depth=2, facts="hidden")
    config = SweepConfig(source="task:permutation-powering", task=task.name, questions=count, seed=5,
                         depths=[0, 2], policy="expert", facts=facts)  # type: ignore[arg-type]
    anyio.run(lambda: run_sweep(items, config, {1: ExpertPolicy()}, out))
    return out


def test_chat_examples_load_with_datasets_and_are_the_prompts_the_llm_policy_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    combine = lambda q, answers: str(sum(int(a) for a in answers))  # noqa: E731
    with OpenAIServer(hch_responder(TREE, combine), api_key=KEY) as server:
        policy = LLMPolicy(model="scripted", base_url=server.base_url)  # the key comes from the environment
        anyio.run(lambda: answer("What is 1+2+3+4?", depth=2, policy=policy, trace_path=tmp_path / "run.json"))
        sent = [(seen.messages, json.loads(seen.step.content or "")) for seen in server.requests
                if seen.status == 200 and seen.step is not None]
    summary = distill([tmp_path / "run.json"], tmp_path / "data", Options(validation=0))
    assert summary.kept["chat"]["train/unknown depth"] == 4
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / "data" / "chat-train.jsonl"), split="train",
                                   cache_dir=str(tmp_path / "hf"))
    exported = [(row["messages"][:2], json.loads(row["messages"][2]["content"])) for row in loaded]
    assert all(row["messages"][2]["role"] == "assistant" for row in loaded)
    key = lambda pair: json.dumps(pair, sort_keys=True)  # noqa: E731
    assert sorted(map(key, exported)) == sorted(map(key, sent))  # message for message, and the actions
    for path in (tmp_path / "data").iterdir():
        assert KEY not in path.read_text(encoding="utf-8"), path.name


def test_pairs_carry_gold_correctness_and_class_from_a_sweep(tmp_path: Path) -> None:
    out = sweep(tmp_path / "sweep")
    summary = distill([out], tmp_path / "data", Options(statuses=frozenset({"ok", "guess"}), validation=0))
    pairs = lines(tmp_path / "data" / "pairs-train.jsonl")
    assert pairs and all(p["root"] and p["gold"] is not None and p["required_depth"] is not None for p in pairs)
    # depth-0 roots of questions needing depth 2 guess; their pairs say so and are graded
    guessed = [p for p in pairs if p["status"] == "guess"]
    assert guessed and all(p["guess_on_path"] for p in guessed)
    assert all(p["correct"] == (p["answer"] == p["gold"]) for p in pairs)
    assert summary.runs == 24 and summary.dropped["pairs"]["duplicate"] + len(pairs) <= 24


def test_filters_drop_guesses_wrong_answers_and_other_policies(tmp_path: Path) -> None:
    out = sweep(tmp_path / "sweep")
    everything = Options(statuses=frozenset({"ok", "guess", "error"}), validation=0)
    distill([out], tmp_path / "all", everything)
    strict = Options(statuses=frozenset({"ok", "guess"}), no_guesses=True, correct_only=True, validation=0)
    summary = distill([out], tmp_path / "strict", strict)
    pairs = lines(tmp_path / "strict" / "pairs-train.jsonl")
    assert pairs and not any(p["guess_on_path"] for p in pairs) and all(p["correct"] for p in pairs)
    assert summary.dropped["pairs"]["guess on path"] > 0
    assert len(pairs) < len(lines(tmp_path / "all" / "pairs-train.jsonl"))
    nobody = distill([out], tmp_path / "none", Options(policies=("llm:*",), validation=0))
    assert sum(nobody.kept["chat"].values()) == 0 and nobody.dropped["chat"]["policy"] > 0


def test_chat_examples_show_h_only_the_header_when_facts_were_hidden(tmp_path: Path) -> None:
    out = sweep(tmp_path / "sweep")
    distill([out], tmp_path / "data", Options(validation=0))
    header = get_task("permutation-powering").header
    chats = lines(tmp_path / "data" / "chat-train.jsonl")
    assert chats
    for chat in chats:
        user = chat["messages"][1]["content"]  # type: ignore[index]
        assert header in user and " -> " not in user.split("</context>")[0].split(header)[1]


def test_the_split_keeps_each_instance_on_one_side(tmp_path: Path) -> None:
    out = sweep(tmp_path / "sweep", count=30)
    summary = distill([out], tmp_path / "data", Options(all_workspaces=True, validation=0.34, seed=2))
    sides = {s: {p["instance"] for p in lines(tmp_path / "data" / f"pairs-{s}.jsonl")} for s in ("train", "validation")}
    assert sides["train"] and sides["validation"] and sides["train"].isdisjoint(sides["validation"])
    metas = {s: {m["instance"] for m in lines(tmp_path / "data" / f"chat-{s}.meta.jsonl")} for s in sides}
    assert metas["train"].isdisjoint(sides["validation"]) and metas["validation"].isdisjoint(sides["train"])
    assert summary.instances == {"train": 2, "validation": 1}
    assert split_of({"a", "b", "c"}, 0.34, 2) == split_of({"c", "b", "a"}, 0.34, 2)
    assert split_of({"only"}, 0.5, 0) == {"only": "train"}


def test_duplicates_are_written_once(tmp_path: Path) -> None:
    out = sweep(tmp_path / "sweep")
    once = distill([out], tmp_path / "once", Options(validation=0))
    twice = distill([out, out], tmp_path / "twice", Options(validation=0))
    assert twice.kept == once.kept
    assert twice.dropped["pairs"]["duplicate"] >= sum(once.kept["pairs"].values())


def test_a_journal_of_a_killed_run_is_read(tmp_path: Path) -> None:
    out = sweep(tmp_path / "sweep")
    trace = next((out / "traces").rglob("depth-2.json"))
    journal = tmp_path / "killed.journal.jsonl"
    from hch.record.format import load
    from hch.record.journal import Journal

    loaded = load(trace)
    writer = Journal(journal, loaded)
    for node, data in loaded.graph.nodes(data=True):
        writer("node", {"id": node, **data})
    for source, target, data in loaded.graph.edges(data=True):
        writer("edge", {"source": source, "target": target, **data})
    writer.close()
    summary = distill([journal], tmp_path / "data", Options(statuses=frozenset({"ok", "guess"}), validation=0))
    assert summary.runs == 1 and sum(summary.kept["chat"].values()) > 0


def test_malformed_inputs_name_the_file_and_line(tmp_path: Path) -> None:
    out = sweep(tmp_path / "sweep")
    records = (out / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    (out / "runs.jsonl").write_text("\n".join([records[0], "{not json", *records[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(DistillError, match=r"runs.jsonl line 2: not a sweep run record"):
        distill([out], tmp_path / "data", Options())
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "hch-trace", "schema_version": 1, "graph": {}, "nodes": [{"id": 1}], "edges": []}')
    with pytest.raises(Exception, match=str(bad)):
        distill([bad], tmp_path / "data", Options())
    with pytest.raises(DistillError, match="no such file"):
        distill([tmp_path / "missing.json"], tmp_path / "data", Options())
    with pytest.raises(DistillError, match="validation share"):
        distill([bad], tmp_path / "data", Options(validation=1.0))


def test_actions_are_the_flat_json_the_llm_policy_expects() -> None:
    assert json.loads(action_json({"kind": "ask", "questions": ["a?", "b?"]})) == {
        "kind": "ask", "questions": ["a?", "b?"], "answer": ""}
    assert json.loads(action_json({"kind": "answer", "answer": "42", "guess": True})) == {
        "kind": "answer", "questions": [], "answer": "42"}
    assert presets.messages(presets.load(), __import__("hch").Workspace(question="q?", depth=1))[0]["role"] == "system"


def test_an_ida_study_directory_gives_its_amp_runs(tmp_path: Path) -> None:
    from hch.learning import TableLearner
    from hch.learning.ida import IdaConfig, run_ida

    config = IdaConfig(task="permutation-powering", learner="table", rounds=1, questions=0, eval_questions=10,
                       instances=1, seed=1, max_depth=1)
    anyio.run(lambda: run_ida(config, TableLearner(), ExpertPolicy(), tmp_path / "ida"))
    summary = distill([tmp_path / "ida"], tmp_path / "data", Options(policies=("expert*",), validation=0))
    assert summary.runs == 256  # the Amp runs; the study's JSON checkpoints and configuration are not traces
    chats = lines(tmp_path / "data" / "chat-train.jsonl")
    assert chats and all("learned:" not in json.dumps(c) for c in chats)


def test_with_facts_hidden_chat_examples_are_the_header_only_prompts_the_llm_policy_sent(tmp_path: Path) -> None:
    import re

    from hch.testing.openai_server import Seen, Step, question_of, subanswers_of

    def halving(seen: Seen) -> Step:  # an H that decomposes sigma^k(x) from the header alone
        match = re.fullmatch(r"What is sigma\^(\d+)\((\w+)\)\?", question_of(seen))
        assert match is not None
        k, x, answers = int(match[1]), match[2], subanswers_of(seen)
        if not answers:
            return Step.ask(f"What is sigma^{k // 2}({x})?")
        if len(answers) == 1:
            return Step.ask(f"What is sigma^{k // 2}({answers[0]})?")
        return Step.answer(answers[-1])

    item = next(i for i in get_task("permutation-powering").generate(12, 4, facts="hidden") if i.required_depth == 2
                and int(i.question.split("^")[1].split("(")[0]) % 2 == 0)
    with OpenAIServer(halving) as server:
        policy = LLMPolicy(model="scripted", base_url=server.base_url)
        anyio.run(lambda: answer(item.question, depth=2, policy=policy, context=item.context, facts="hidden",
                                 trace_path=tmp_path / "run.json"))
        sent = [(seen.messages, json.loads(seen.step.content or "")) for seen in server.requests
                if seen.status == 200 and seen.step is not None]
    assert len(sent) == 9  # three steps at the root and at each sigma^(k/2) node; sigma^1 is the environment's
    distill([tmp_path / "run.json"], tmp_path / "data", Options(validation=0))
    exported = [(chat["messages"][:2], json.loads(chat["messages"][2]["content"]))  # type: ignore[index]
                for chat in lines(tmp_path / "data" / "chat-train.jsonl")]
    key = lambda pair: json.dumps(pair, sort_keys=True)  # noqa: E731
    assert sorted(map(key, exported)) == sorted(map(key, sent))
    assert not any(" -> " in m["content"].split(get_task("permutation-powering").header)[1].split("</context>")[0]
                   for messages, _ in sent for m in messages if m["role"] == "user")
