from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from helpers import FunctionPolicy

import hch
from hch.errors import TraceError
from hch.experts import ExpertPolicy
from hch.record.format import load, save
from hch.record.trace import Trace
from hch.review.replay import replay
from hch.workspace import Answer, Ask, Workspace

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def recorded(tmp_path: Path, question: str = SUM, depth: int = 3) -> Trace:
    hch.answer_sync(question, depth=depth, trace_path=tmp_path / "t.json")
    return load(tmp_path / "t.json")


def test_replay_reproduces_answer_and_tree_without_calling_any_policy(tmp_path: Path) -> None:
    report, trace = anyio.run(replay, recorded(tmp_path))
    assert report.reproduced and report.answer == "31" and report.served == 10
    assert report.divergence is None and report.diff.same
    assert {d["policy"] for _, d in trace.workspaces()} == {ExpertPolicy().fingerprint}


def test_a_tampered_call_output_is_reported_as_the_first_divergence(tmp_path: Path) -> None:
    trace = recorded(tmp_path)
    leaf = next(n for n, d in trace.workspaces() if d["question"] == "What is the sum of 4, 1?")
    call = trace.node_calls(leaf)[0]
    trace.graph.nodes[call]["output"]["answer"] = "6"
    save(trace, tmp_path / "tampered.json")
    report, _ = anyio.run(replay, load(tmp_path / "tampered.json"))
    assert not report.reproduced
    assert report.divergence is not None
    parent = next(n for n, d in trace.workspaces() if d["question"] == "What is the sum of 3, 1, 4, 1?")
    assert (report.divergence.node, report.divergence.call) == (parent, 2)
    line = report.divergence.line()
    assert "input steps differs" in line and '"answer": "5"' in line and '"answer": "6"' in line


def test_a_tampered_workspace_answer_is_reported_by_the_comparison(tmp_path: Path) -> None:
    trace = recorded(tmp_path)
    trace.graph.nodes[trace.root]["answer"] = "32"
    report, _ = anyio.run(replay, trace)
    assert not report.reproduced and report.divergence is None
    assert report.diff.first is not None
    assert (report.diff.first.node_a, report.diff.first.what) == (trace.root, "answer")
    assert (report.diff.first.expected, report.diff.first.got) == ("32", "31")


def test_questions_asked_in_another_order_diverge(tmp_path: Path) -> None:
    trace = recorded(tmp_path)
    root_ask = trace.node_calls(trace.root)[0]
    questions = trace.graph.nodes[root_ask]["output"]["questions"]
    questions.reverse()  # the children's recorded inputs no longer follow from this ask
    report, _ = anyio.run(replay, trace)
    assert not report.reproduced
    assert report.diff.first is not None and report.diff.first.node_a == trace.root


def test_recorded_failures_are_replayed_as_failures(tmp_path: Path) -> None:
    async def flaky(ws: Workspace) -> Ask | Answer:
        if ws.question == "bad":
            raise ValueError("boom")
        return Ask(questions=["bad", "good"]) if not ws.steps else Answer(answer="done")

    hch.answer_sync("root", depth=1, policy=FunctionPolicy(flaky), trace_path=tmp_path / "f.json")
    report, trace = anyio.run(replay, load(tmp_path / "f.json"))
    assert report.reproduced
    bad = next(d for _, d in trace.workspaces() if d["question"] == "bad")
    assert bad["status"] == "error" and "boom" in bad["error"]


def test_another_policy_from_one_node_changes_only_that_subtree(tmp_path: Path) -> None:
    trace = recorded(tmp_path)
    node = next(n for n, d in trace.workspaces() if d["question"] == "What is the sum of 3, 1, 4, 1?")

    async def hundred(ws: Workspace) -> Answer:
        return Answer(answer="100")

    other = FunctionPolicy(hundred)
    report, _ = anyio.run(lambda: replay(trace, other, node))
    assert other.calls == {"What is the sum of 3, 1, 4, 1?": 1}  # its children were never asked
    assert report.diff.first is not None and report.diff.first.node_a == node
    assert report.diff.first.what == "call 1 output"
    assert report.answer.startswith("error: replay diverged")  # the root's next input is not recorded
    report, _ = anyio.run(lambda: replay(trace, other, node, fallback=ExpertPolicy()))
    assert report.answer == "122" and report.unserved == 1 and report.served == 5


def test_from_node_must_be_a_workspace_and_needs_a_policy(tmp_path: Path) -> None:
    trace = recorded(tmp_path)
    call = trace.node_calls(trace.root)[0]
    with pytest.raises(TraceError, match="no workspace node"):
        anyio.run(lambda: replay(trace, ExpertPolicy(), call))
    with pytest.raises(TraceError, match="needs --policy"):
        anyio.run(lambda: replay(trace, None, trace.root))


def test_a_question_the_recording_never_asked_is_a_divergence_without_a_node(tmp_path: Path) -> None:
    trace = recorded(tmp_path, "What is (3 + 4) * (2 + 5) - 6?", 2)
    trace.graph.nodes[trace.node_calls(trace.root)[0]]["output"]["questions"] = ["What is 3 + 4?"]
    report, _ = anyio.run(replay, trace)
    data = json.loads(report.model_dump_json())
    assert data["reproduced"] is False
    assert data["divergence"] == {
        "node": None, "question": "What is 3 + 4?", "call": 1, "expected": None,
        "got": {"question": "What is 3 + 4?", "depth": 1, "steps": [], "max_asks": 8, "steps_left": 8,
                "refusal": None},
    }
    assert "a workspace not in the recording" in report.text()


def test_an_llm_run_replays_offline_and_another_model_at_one_node_shows_where_it_departs() -> None:
    from hch.policies.llm import LLMPolicy
    from hch.policies.presets import Retry
    from hch.testing.openai_server import OpenAIServer, hch_responder

    tree: dict[str, list[str] | str] = {"What is 1+2+3+4?": ["What is 1+2?", "What is 3+4?"], "What is 1+2?": "3",
                                        "What is 3+4?": "7"}
    wrong = {**tree, "What is 3+4?": "8"}

    def combine(question: str, answers: list[str]) -> str:
        return str(sum(int(a) for a in answers))

    def llm(server: OpenAIServer) -> LLMPolicy:
        return LLMPolicy(model="m", base_url=server.base_url, api_key="sk-test", request_timeout=5.0,
                         retry=Retry(max_attempts=2, max_seconds=10, initial_wait=0.01, max_wait=0.02, jitter=0.0))

    with OpenAIServer(hch_responder(tree, combine), api_key="sk-test", models={"m"}) as server:
        recorded = anyio.run(lambda: hch.answer("What is 1+2+3+4?", depth=1, policy=llm(server))).trace
        requests = len(server.requests)
        report, _ = anyio.run(replay, recorded)
        assert len(server.requests) == requests  # served wholly from the recording: no network
    assert report.reproduced and report.answer == "10" and report.served == 4

    node = next(n for n, d in recorded.workspaces() if d["question"] == "What is 3+4?")
    with OpenAIServer(hch_responder(wrong, combine), api_key="sk-test", models={"m"}) as other:
        report, _ = anyio.run(lambda: replay(recorded, llm(other), node, fallback=llm(other)))
        assert len(other.requests) == 2  # the swapped node, then the root's final call (the fallback)
    assert report.diff.first is not None and report.diff.first.node_a == node
    assert report.diff.first.what == "call 1 output" and report.answer == "11"


def test_a_replayed_vote_keeps_its_invocations_and_independent_copies_replay_in_their_mode() -> None:
    from hch.policies.spec import make_policy

    policy = make_policy("check(vote(3, expert(noise=0.2, on=all)), expert(noise=0.2, seed=5))")
    recorded = hch.answer_sync("What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?", depth=3, policy=policy,
                               copies="independent")
    report, trace = anyio.run(replay, recorded.trace)
    assert report.reproduced, report.text()
    assert trace.meta["copies"] == "independent"
    def invocations(of: Trace) -> list[int]:
        return sorted(d["invocations"] for _, d in of.calls())

    assert invocations(trace) == invocations(recorded.trace)
    assert trace.meta["summary"]["invocations"] == recorded.summary.invocations > recorded.summary.policy_calls


def test_a_trace_with_an_unknown_copies_mode_is_a_one_line_error() -> None:
    recorded = hch.answer_sync("What is the sum of 1, 2?", depth=1)
    recorded.trace.meta["copies"] = "several"
    with pytest.raises(TraceError, match="recorded copies mode 'several'"):
        anyio.run(replay, recorded.trace)
