from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from helpers import FunctionPolicy

import hch
from hch.errors import NodeFailed, QuestionError
from hch.limits import Limits
from hch.run.call_cache import CallCache
from hch.workspace import Answer, Ask, Reply, Usage, Workspace

pytestmark = pytest.mark.anyio

SUM8 = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def answer_text(ws: Workspace) -> str:
    return ",".join(sub.answer for sub in ws.answers)


async def test_hch0_answers_alone() -> None:
    result = await hch.answer("What is the sum of 2, 3?", depth=0)
    assert (result.answer, result.status) == ("5", "ok")
    assert result.summary.nodes == 1
    assert result.summary.policy_calls == 1


async def test_hch0_guesses_a_question_it_cannot_decompose() -> None:
    result = await hch.answer(SUM8, depth=0)
    assert result.status == "guess"
    assert result.summary.guesses == 1
    assert result.summary.nodes == 1


async def test_hchn_delegates_and_is_right_at_sufficient_depth() -> None:
    result = await hch.answer(SUM8, depth=2)
    assert (result.answer, result.status) == ("31", "ok")
    trace = result.trace
    children = trace.children(trace.root)
    assert [trace.graph.nodes[c]["question"] for c, _ in children] == [
        "What is the sum of 3, 1, 4, 1?",
        "What is the sum of 5, 9, 2, 6?",
    ]
    assert {data["depth"] for _, data in trace.workspaces()} == {2, 1, 0}
    assert result.summary.levels == 2


async def test_below_sufficient_depth_the_expert_still_asks_and_guesses_only_at_depth_0() -> None:
    result = await hch.answer(SUM8, depth=1)
    assert result.status == "guess"
    assert (result.summary.nodes, result.summary.guesses) == (3, 3)  # the halves guess at depth 0


async def test_the_early_guess_variant_guesses_at_once_below_sufficient_depth() -> None:
    from hch.experts import ExpertPolicy

    result = await hch.answer(SUM8, depth=1, policy=ExpertPolicy(early_guess=True))
    assert result.status == "guess"
    assert (result.summary.nodes, result.summary.guesses) == (1, 1)


async def test_a_guess_below_propagates_to_the_answer_above() -> None:
    # The node budget lets the halves be asked but not split further, so they guess.
    result = await hch.answer(SUM8, depth=2, limits=Limits(max_nodes=3))
    assert result.status == "guess"
    assert result.summary.guesses == 3
    assert result.summary.limits_hit == ["max_nodes"]


async def test_subquestions_of_one_step_run_concurrently() -> None:
    # Each child waits for the other's event: run one after the other, they would never finish.
    started = {"a": anyio.Event(), "b": anyio.Event()}

    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question == "root":
            return Ask(questions=["a", "b"]) if not ws.steps else Answer(answer=answer_text(ws))
        started[ws.question].set()
        await started["b" if ws.question == "a" else "a"].wait()
        return Answer(answer=ws.question.upper())

    with anyio.fail_after(5):
        result = await hch.answer("root", depth=1, policy=FunctionPolicy(behaviour))
    assert result.answer == "A,B"


async def test_an_identical_question_asked_concurrently_is_expanded_once() -> None:
    release = anyio.Event()

    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question == "root":
            return Ask(questions=["left", "right"]) if not ws.steps else Answer(answer=answer_text(ws))
        if ws.question in ("left", "right"):
            return Ask(questions=["shared"]) if not ws.steps else Answer(answer=ws.question + answer_text(ws))
        await release.wait()
        return Answer(answer="!")

    policy = FunctionPolicy(behaviour)
    async with anyio.create_task_group() as group:
        results: list[hch.Result] = []

        async def run() -> None:
            results.append(await hch.answer("root", depth=2, policy=policy))

        group.start_soon(run)
        await wait_all_tasks_blocked()  # both "left" and "right" now wait on the one "shared" expansion
        release.set()
    result = results[0]
    assert result.answer == "left!,right!"
    assert policy.calls["shared"] == 1
    kinds = sorted(d["kind"] for _, _, d in result.trace.graph.edges(data=True) if d["kind"] != "call")
    assert kinds == ["delegate", "delegate", "delegate", "reuse"]
    assert result.summary.subtree_cache_hits == 1
    assert result.summary.nodes == 4


async def test_the_same_question_twice_in_one_step_is_expanded_once() -> None:
    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question == "root":
            return Ask(questions=["x", " x "]) if not ws.steps else Answer(answer=answer_text(ws))
        return Answer(answer="1")

    policy = FunctionPolicy(behaviour)
    result = await hch.answer("root", depth=1, policy=policy)
    assert result.answer == "1,1"
    assert policy.calls["x"] == 1
    assert result.summary.subtree_cache_hits == 1


async def test_a_question_repeating_an_ancestor_is_recorded_as_a_cycle() -> None:
    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.depth > 0 and not ws.steps:
            return Ask(questions=["loop"])
        return Answer(answer="done")

    result = await hch.answer("loop", depth=3, policy=FunctionPolicy(behaviour))
    assert result.answer == "done"
    nodes = dict(result.trace.workspaces())
    root = result.trace.root
    child = result.trace.children(root)[0][0]
    assert nodes[child]["cycle_of"] == root
    assert result.summary.cycles == 3  # depths 2, 1 and 0 all repeat an ancestor
    assert result.summary.nodes == 4


async def test_an_ask_at_depth_zero_is_refused_back_with_the_reason() -> None:
    seen: list[str | None] = []

    async def behaviour(ws: Workspace) -> Ask | Answer:
        seen.append(ws.refusal)
        return Ask(questions=["sub"]) if ws.refusal is None else Answer(answer="gave up")

    result = await hch.answer("q", depth=0, policy=FunctionPolicy(behaviour))
    assert result.answer == "gave up"
    assert seen[0] is None and seen[1] is not None and "depth 0" in seen[1]
    assert result.summary.nodes == 1


async def test_refusals_are_bounded_then_the_node_errors() -> None:
    async def behaviour(ws: Workspace) -> Ask:
        return Ask(questions=["sub"])

    policy = FunctionPolicy(behaviour)
    result = await hch.answer("q", depth=0, policy=policy, limits=Limits(max_refusals=2))
    assert result.status == "error"
    assert "refused" in result.answer
    assert policy.calls["q"] == 3


async def test_too_many_subquestions_in_a_step_are_refused_and_recorded() -> None:
    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question != "root":
            return Answer(answer=ws.question)
        if not ws.steps:
            return Ask(questions=["a", "b", "c"] if ws.refusal is None else ["a", "b"])
        return Answer(answer=answer_text(ws))

    result = await hch.answer("root", depth=1, policy=FunctionPolicy(behaviour), limits=Limits(max_asks_per_step=2))
    assert result.answer == "a,b"
    root = result.trace.graph.nodes[result.trace.root]
    assert root["limit"] == "max_asks_per_step"
    assert result.summary.limits_hit == ["max_asks_per_step"]
    refused_input = [d["input"]["refusal"] for _, d in result.trace.calls() if d["input"]["question"] == "root"]
    assert refused_input[1] is not None and "at most 2" in refused_input[1]


async def test_steps_per_node_limit_forces_an_answer() -> None:
    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question == "root" and ws.refusal is None:
            return Ask(questions=[f"step {len(ws.steps)}"])
        return Answer(answer=str(len(ws.steps)))

    result = await hch.answer("root", depth=1, policy=FunctionPolicy(behaviour), limits=Limits(max_steps_per_node=3))
    assert result.answer == "3"
    assert result.trace.graph.nodes[result.trace.root]["limit"] == "max_steps_per_node"


async def test_node_limit_refuses_asks_beyond_the_budget() -> None:
    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.depth > 0 and not ws.steps and ws.refusal is None:
            return Ask(questions=[f"{ws.question}.{i}" for i in range(3)])
        return Answer(answer="ok")

    result = await hch.answer("r", depth=2, policy=FunctionPolicy(behaviour), limits=Limits(max_nodes=5))
    assert result.summary.nodes <= 5
    assert "max_nodes" in result.summary.limits_hit


async def test_a_failing_node_becomes_a_recorded_error_and_its_parent_goes_on() -> None:
    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question == "bad":
            raise RuntimeError("boom")
        if ws.question == "root":
            return Ask(questions=["bad", "good"]) if not ws.steps else Answer(answer=answer_text(ws))
        return Answer(answer="fine")

    result = await hch.answer("root", depth=1, policy=FunctionPolicy(behaviour))
    assert result.status == "ok"
    assert result.answer == "error: policy raised RuntimeError: boom,fine"
    errors = [d for _, d in result.trace.workspaces() if d["status"] == "error"]
    assert len(errors) == 1 and errors[0]["error"] == "policy raised RuntimeError: boom"
    failed_call = [d for _, d in result.trace.calls() if d["error"]]
    assert len(failed_call) == 1 and failed_call[0]["output"] is None


async def test_fail_fast_aborts_the_run_and_still_writes_the_trace(tmp_path: Path) -> None:
    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question == "bad":
            raise RuntimeError("boom")
        if ws.question == "slow":
            await anyio.sleep_forever()
        return Ask(questions=["bad", "slow"])

    path = tmp_path / "t.json"
    with pytest.raises(NodeFailed, match="boom"):
        await hch.answer("root", depth=1, policy=FunctionPolicy(behaviour), fail_fast=True, trace_path=path)
    trace = hch.load_trace(path)
    statuses = {d["question"]: d["status"] for _, d in trace.workspaces()}
    assert statuses == {"root": "interrupted", "bad": "error", "slow": "interrupted"}
    assert trace.meta["status"] == "interrupted"


async def test_node_timeout_is_recorded_and_the_parent_goes_on() -> None:
    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question == "stuck":
            await anyio.sleep_forever()
        if ws.question == "root":
            return Ask(questions=["stuck"]) if not ws.steps else Answer(answer=answer_text(ws))
        return Answer(answer="x")

    result = await hch.answer("root", depth=1, policy=FunctionPolicy(behaviour), limits=Limits(node_timeout=0.05))
    assert (result.answer, result.status) == ("error: node timeout reached", "ok")
    stuck = next(d for _, d in result.trace.workspaces() if d["question"] == "stuck")
    assert (stuck["status"], stuck["limit"]) == ("error", "node_timeout")


async def test_run_timeout_stops_the_run_cleanly() -> None:
    async def behaviour(ws: Workspace) -> Answer:
        await anyio.sleep_forever()
        raise AssertionError

    result = await hch.answer("q", depth=0, policy=FunctionPolicy(behaviour), limits=Limits(run_timeout=0.05))
    assert result.status == "error"
    assert result.summary.limits_hit == ["run_timeout"]


async def test_token_budget_stops_further_calls_where_it_is_reached() -> None:
    async def behaviour(ws: Workspace) -> Reply:
        usage = Usage(prompt_tokens=6, completion_tokens=4, cost=0.01)
        if ws.question == "root" and not ws.steps:
            return Reply(action=Ask(questions=["a"]), usage=usage)
        if ws.question == "a" and not ws.steps:
            return Reply(action=Ask(questions=["b"]), usage=usage)
        return Reply(action=Answer(answer="x"), usage=usage)

    policy = FunctionPolicy(behaviour)
    result = await hch.answer("root", depth=3, policy=policy, limits=Limits(max_total_tokens=20))
    assert result.summary.tokens == 20
    assert result.summary.cost == pytest.approx(0.02)
    assert sum(policy.calls.values()) == 2
    assert "max_total_tokens" in result.summary.limits_hit


async def test_a_rerun_after_an_interrupted_run_repeats_no_finished_call(tmp_path: Path) -> None:
    block = True

    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question == "root":
            return Ask(questions=["fast", "slow"]) if not ws.steps else Answer(answer=answer_text(ws))
        if ws.question == "slow" and block:
            await anyio.sleep_forever()
        return Answer(answer=ws.question)

    first = FunctionPolicy(behaviour)
    cache = CallCache(tmp_path / "cache.sqlite")
    with anyio.move_on_after(0.2):  # stands in for Ctrl-C: cancels the run mid-way
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: hch.answer("root", depth=1, policy=first, call_cache=cache))
            await wait_all_tasks_blocked()
            group.cancel_scope.cancel()
    cache.close()
    assert dict(first.calls) == {"root": 1, "fast": 1, "slow": 1}

    block = False
    second = FunctionPolicy(behaviour)
    result = await hch.answer("root", depth=1, policy=second, call_cache=CallCache(tmp_path / "cache.sqlite"))
    assert result.answer == "fast,slow"
    assert dict(second.calls) == {"slow": 1, "root": 1}  # root's second step is new; its first was cached
    assert result.summary.call_cache_hits == 2


async def test_the_call_cache_serves_a_whole_rerun(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    first = await hch.answer(SUM8, depth=2, call_cache=cache)
    again = await hch.answer(SUM8, depth=2, call_cache=cache)
    assert again.answer == first.answer
    assert again.summary.policy_calls == 0
    assert again.summary.call_cache_hits == first.summary.policy_calls


async def test_a_policy_may_decide_position_by_position() -> None:
    root_policy = FunctionPolicy(lambda ws: _const(Ask(questions=["x"]) if not ws.steps else Answer(answer="r")), "R")
    leaf_policy = FunctionPolicy(lambda ws: _const(Answer(answer="leaf")), "L")

    class ByRoot:
        fingerprint = "by-root(R,L)"

        def at(self, depth: int, root: bool) -> FunctionPolicy:
            return root_policy if root else leaf_policy

        async def act(self, workspace: Workspace) -> Answer:
            raise AssertionError("the engine resolves positional policies")

    result = await hch.answer("q", depth=1, policy=ByRoot())
    policies = {d["question"]: d["policy"] for _, d in result.trace.workspaces()}
    assert policies == {"q": "R", "x": "L"}


async def _const(action: Ask | Answer) -> Ask | Answer:
    return action


async def test_bad_input_is_rejected_up_front() -> None:
    with pytest.raises(QuestionError, match="empty"):
        await hch.answer("  ", depth=1)
    with pytest.raises(QuestionError, match="at most"):
        await hch.answer("x" * 100_000, depth=1)
    with pytest.raises(ValueError, match="depth"):
        await hch.answer("What is 1 + 2?", depth=-1)
    with pytest.raises(QuestionError, match="cannot parse"):
        await hch.answer("Why is the sky blue?", depth=1)


def test_answer_sync_returns_answer_and_trace() -> None:
    result = hch.answer_sync("What is (3 + 4) * (10 - 2 * 3)?", depth=2)
    assert result.answer == "28"
    assert result.trace.graph.number_of_nodes() > 0


# -- text that is not valid Unicode is refused where it enters, and never costs the trace (issue 14) --

NOT_UTF8 = ["caf\udce9?", "\udcff", "What is \ud800 plus 1?"]  # bytes from argv/terminal, a lone surrogate


@pytest.mark.parametrize("bad", NOT_UTF8)
async def test_a_question_or_context_that_is_not_valid_text_is_refused_up_front(tmp_path: Path, bad: str) -> None:
    with pytest.raises(QuestionError, match="the question is not valid text: character"):
        await hch.answer(bad, depth=1, trace_path=tmp_path / "t.json")
    with pytest.raises(QuestionError, match="the context is not valid text"):
        await hch.answer("What is the sum of 1, 2?", depth=1, context=f"facts {bad}")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad", NOT_UTF8)
async def test_a_policy_answer_that_is_not_valid_text_fails_its_node_and_the_trace_is_kept(
    tmp_path: Path, bad: str
) -> None:
    async def behaviour(ws: Workspace) -> Answer | Ask | Reply:
        if ws.depth == 1 and not ws.steps:
            return Ask(questions=["a?", "b?"])
        if ws.depth == 1:
            return Answer(answer=" / ".join(s.answer for s in ws.answers))
        raw = {"response": bad}  # raw text a server sent may hold anything: it is written escaped
        return Reply(action=Answer(answer=bad if ws.question == "a?" else "fine"), raw=raw)

    cache = CallCache(tmp_path / "c.sqlite")
    result = await hch.answer("q?", depth=1, policy=FunctionPolicy(behaviour), trace_path=tmp_path / "t.json",
                              call_cache=cache)
    cache.close()
    loaded = hch.load_trace(tmp_path / "t.json")
    statuses = {data["question"]: data["status"] for _, data in loaded.workspaces()}
    assert statuses == {"q?": "ok", "a?": "error", "b?": "ok"}
    assert "not valid text" in result.answer and "fine" in result.answer
    assert not (tmp_path / "t.journal.jsonl").exists()


async def test_raw_policy_output_that_is_not_valid_text_is_written_escaped(tmp_path: Path) -> None:
    async def behaviour(ws: Workspace) -> Reply:
        return Reply(action=Answer(answer="4"), raw={"body": "\udc80\ud800 broken", "nested": ["\udfff"]})

    await hch.answer("q?", depth=0, policy=FunctionPolicy(behaviour), trace_path=tmp_path / "t.json")
    loaded = hch.load_trace(tmp_path / "t.json")
    call = next(data for _, data in loaded.calls())
    assert call["raw"] == {"body": "\udc80\ud800 broken", "nested": ["\udfff"]}
    (tmp_path / "t.json").read_bytes().decode("utf-8")  # the file itself is valid UTF-8


async def test_a_policy_error_whose_message_is_not_valid_text_is_recorded_escaped(tmp_path: Path) -> None:
    async def behaviour(ws: Workspace) -> Answer | Ask:
        if ws.depth == 1 and not ws.steps:
            return Ask(questions=["a?"])
        if ws.depth == 1:
            return Answer(answer=ws.answers[0].answer)
        raise RuntimeError("server said \udcff\udcfe")

    cache = CallCache(tmp_path / "c.sqlite")
    result = await hch.answer("q?", depth=1, policy=FunctionPolicy(behaviour), trace_path=tmp_path / "t.json",
                              call_cache=cache)
    cache.close()
    assert result.answer == "error: policy raised RuntimeError: server said \\udcff\\udcfe"
    assert hch.load_trace(tmp_path / "t.json").meta["answer"] == result.answer


# -- independent copies ------------------------------------------------------------------------


def _twice(ws: Workspace) -> Ask | Answer:
    if ws.question == "root":
        return Ask(questions=["x", " x "]) if not ws.steps else Answer(answer=answer_text(ws))
    return Answer(answer="copy " + ws.copy[:4] if ws.copy else "merged")


async def test_independent_copies_ask_the_same_question_of_separate_copies() -> None:
    policy = FunctionPolicy(lambda ws: _const(_twice(ws)))
    result = await hch.answer("root", depth=1, policy=policy, copies="independent")
    assert policy.calls["x"] + policy.calls[" x "] == 2 and result.summary.subtree_cache_hits == 0
    assert result.trace.meta["copies"] == "independent"
    copies = [data["copy"] for _, data in result.trace.workspaces()]
    assert len(set(copies)) == 3 and all(len(c) == 16 for c in copies)
    inputs = [data["input"]["copy"] for _, data in result.trace.calls()]
    assert sorted(set(inputs)) == sorted(copies)
    again = await hch.answer("root", depth=1, policy=FunctionPolicy(lambda ws: _const(_twice(ws))),
                             copies="independent")
    assert again.answer == result.answer  # copy ids depend only on the place: reruns make the same copies
    merged = await hch.answer("root", depth=1, policy=FunctionPolicy(lambda ws: _const(_twice(ws))))
    assert merged.answer == "merged,merged" and merged.trace.meta["copies"] == "merged"
    assert all("copy" not in data for _, data in merged.trace.workspaces())
    assert all("copy" not in data["input"] for _, data in merged.trace.calls())


def test_a_merged_workspace_dumps_and_keys_exactly_as_before_copies_existed() -> None:
    from hch.run.call_cache import call_key

    ws = Workspace(question="q", depth=2, context="c", refusal="r")
    before = '{"question":"q","depth":2,"context":"c","steps":[],"max_asks":8,"steps_left":8,"refusal":"r"}'
    assert ws.model_dump_json() == before  # what call_key hashed before the field existed
    assert call_key("fp", ws) == hashlib.sha256(("fp\x00" + before).encode()).hexdigest()
    assert call_key("fp", ws.model_copy(update={"copy": "ab"})) != call_key("fp", ws)


async def test_a_rerun_of_an_independent_run_is_served_whole_by_the_call_cache(tmp_path: Path) -> None:
    from hch.experts.noisy import NoisyExpertPolicy
    from hch.tasks import get_task

    item = get_task("permutation-powering").generate(5, seed=2, max_depth=4)[4]
    noisy = NoisyExpertPolicy(noise=0.3, seed="1", on="all")
    cache = CallCache(tmp_path / "c.sqlite")
    first = await hch.answer(item.question, depth=5, policy=noisy, context=item.context, call_cache=cache,
                             copies="independent")
    again = await hch.answer(item.question, depth=5, policy=noisy, context=item.context, call_cache=cache,
                             copies="independent")
    assert first.summary.policy_calls > 3
    assert (again.summary.policy_calls, again.summary.call_cache_hits) == (0, first.summary.policy_calls)
    assert [d["answer"] for _, d in again.trace.workspaces()] == [d["answer"] for _, d in first.trace.workspaces()]
    merged = await hch.answer(item.question, depth=5, policy=noisy, context=item.context, call_cache=cache)
    assert merged.summary.call_cache_hits == 0  # other copies: other keys


async def test_an_independent_run_replays_from_its_recording() -> None:
    from hch.experts.noisy import NoisyExpertPolicy
    from hch.review.replay import replay
    from hch.tasks import get_task

    item = get_task("permutation-powering").generate(5, seed=3, max_depth=4)[4]
    noisy = NoisyExpertPolicy(noise=0.3, seed="2", on="all")
    recorded = await hch.answer(item.question, depth=5, policy=noisy, context=item.context, copies="independent")
    report, trace = await replay(recorded.trace)
    assert report.reproduced and report.unserved == 0 and trace.meta["copies"] == "independent"


async def test_copies_must_be_merged_or_independent() -> None:
    with pytest.raises(ValueError, match="copies must be 'merged' or 'independent'"):
        await hch.answer(SUM8, depth=1, copies="shared")  # type: ignore[arg-type]


def test_the_root_copy_is_fixed_by_the_question() -> None:
    from hch.run.engine import root_copy

    assert root_copy("What is 1+2?") == root_copy("  What is   1+2? ") != root_copy("What is 1+3?")
def lookup(table: dict[str, str], key: str) -> str:
    return table[key]  # the line a user's bug is on


async def buggy(ws: Workspace) -> Answer:
    return Answer(answer=lookup({}, "missing"))


async def test_an_exception_in_a_users_policy_keeps_its_traceback_in_the_trace(tmp_path: Path) -> None:
    result = await hch.answer("q", depth=0, policy=FunctionPolicy(buggy), trace_path=tmp_path / "t.json")
    assert result.status == "error" and result.answer == "error: policy raised KeyError: 'missing'"
    for trace in (result.trace, hch.load_trace(tmp_path / "t.json")):
        (call,) = [d for _, d in trace.calls()]
        assert call["error_traceback"].startswith("Traceback (most recent call last):")
        assert "in lookup\n    return table[key]" in call["error_traceback"]
        assert call["error_traceback"].rstrip().endswith("KeyError: 'missing'")


async def test_fail_fast_chains_the_policys_exception_as_the_cause() -> None:
    with pytest.raises(NodeFailed, match="missing") as caught:
        await hch.answer("q", depth=0, policy=FunctionPolicy(buggy), fail_fast=True)
    assert isinstance(caught.value.__cause__, KeyError)
    assert caught.value.__cause__.__traceback__ is not None


async def test_a_policy_error_is_recorded_without_a_traceback() -> None:
    result = await hch.answer("What is 1 / 0?", depth=1)
    assert result.status == "error"
    assert [d["error_traceback"] for _, d in result.trace.calls()] == [None]


async def test_policy_may_be_a_spec_string() -> None:
    result = await hch.answer(SUM8, depth=3, policy="vote(3, expert)")
    assert result.answer == "31"
    assert result.trace.meta["policy"] == hch.make_policy("vote(3, expert)").fingerprint
    assert result.trace.meta["policy_spec"] == "vote(3, expert)"
    with pytest.raises(hch.PolicySpecError, match="unknown policy 'nonsense'"):
        await hch.answer(SUM8, depth=1, policy="nonsense")


async def echo(ws: Workspace) -> Answer:
    return Answer(answer=ws.question.upper())


async def test_policy_may_be_a_plain_async_function_fingerprinted_by_name_and_source() -> None:
    result = await hch.answer("hello", depth=0, policy=echo)
    assert result.answer == "HELLO"
    fingerprint = result.trace.meta["policy"]
    assert fingerprint.startswith("fn:test_engine.echo@") and len(fingerprint.rsplit("@")[1]) == 12

    async def named(ws: Workspace) -> str:
        return "x"

    named.fingerprint = "mine@2"  # type: ignore[attr-defined]
    assert (await hch.answer("q", depth=0, policy=named)).trace.meta["policy"] == "mine@2"
    with pytest.raises(TypeError, match=r"policy must be a Policy .* not int"):
        await hch.answer("q", depth=0, policy=42)  # type: ignore[arg-type]


async def test_answer_sync_inside_a_running_event_loop_says_to_await_answer() -> None:
    with pytest.raises(RuntimeError, match=r"use `await hch\.answer\(\.\.\.\)`"):
        hch.answer_sync(SUM8, depth=1)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"question": 3, "depth": 1}, "the question and the context must be strings, not 3"),
        ({"depth": "2"}, "depth must be an int and limits a hch.Limits, not '2'"),
        ({"depth": 1, "limits": {"max_nodes": 3}}, "limits a hch.Limits, not 1 and {'max_nodes': 3}"),
    ],
)
def test_arguments_of_the_wrong_type_are_refused_before_the_run(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        hch.answer_sync(**{"question": SUM8, **arguments})


def test_answer_sync_takes_exactly_the_keyword_arguments_of_answer() -> None:
    import inspect

    sync, run = inspect.signature(hch.answer_sync), inspect.signature(hch.answer)
    assert list(sync.parameters) == list(run.parameters)
    for name, parameter in run.parameters.items():
        assert sync.parameters[name].kind == parameter.kind and sync.parameters[name].default == parameter.default
        assert sync.parameters[name].annotation == parameter.annotation
    assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in sync.parameters.values())


async def test_progress_counts_nodes_calls_in_flight_and_reported_retries() -> None:
    from hch.run.progress import Progress, retrying

    seen: list[tuple[int, int, int]] = []
    both_in_flight = anyio.Event()

    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question == "root":
            return Ask(questions=["a", "b"]) if not ws.steps else Answer(answer=answer_text(ws))
        retrying(0.0)
        await both_in_flight.wait()
        return Answer(answer=ws.question)

    def listener(progress: Progress) -> None:
        seen.append((progress.nodes, progress.in_flight, progress.retries))
        if progress.in_flight == 2 and progress.retries == 2:
            both_in_flight.set()

    progress = Progress(listener=listener)
    result = await hch.answer("root", depth=1, policy=FunctionPolicy(behaviour), progress=progress)
    assert result.answer == "a,b"
    assert (3, 2, 2) in seen  # both subquestions' calls were in flight at once, each reported a retry
    assert (progress.nodes, progress.finished, progress.calls, progress.in_flight) == (3, 3, 4, 0)
    assert progress.retries == 2
async def test_a_cache_hit_records_latency_0_and_the_original_latency(tmp_path: Path) -> None:
    async def behaviour(ws: Workspace) -> Answer:
        await anyio.sleep(0.01)
        return Answer(answer="x")

    cache = CallCache(tmp_path / "c.sqlite")
    made = await hch.answer("q", depth=0, policy=FunctionPolicy(behaviour), call_cache=cache)
    served = await hch.answer("q", depth=0, policy=FunctionPolicy(behaviour), call_cache=cache)
    (_, call), = made.trace.calls()
    (_, hit), = served.trace.calls()
    assert call["original_latency"] is None and not call["cached"]
    assert hit["cached"] and hit["latency"] == 0.0 and hit["original_latency"] == call["latency"]
