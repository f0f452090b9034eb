"""Facts hidden (the 2018 paper's environment): H sees only the task's header, the environment answers look-ups."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import trace_data

from hch.errors import QuestionError
from hch.experts import ExpertPolicy
from hch.policies.llm import LLMPolicy
from hch.record.trace import Trace
from hch.review.replay import replay
from hch.run.call_cache import CallCache
from hch.run.engine import answer
from hch.run.facts import check_facts
from hch.tasks import get_task, oracle_answer, visible_context
from hch.tasks.base import header
from hch.tasks.permutation_powering import HEADER as PERMUTATION
from hch.testing.openai_server import OpenAIServer, hch_responder
from hch.workspace import Action, Workspace

pytestmark = pytest.mark.anyio
PAPER_TASKS = ["permutation-powering", "sequential-assignments", "wildcard-search", "shortest-path", "union-find"]


class Recording:
    """The honest expert, keeping every workspace it was shown; `sees_facts` as asked."""

    def __init__(self, sees_facts: bool = False) -> None:
        self.inner = ExpertPolicy()
        self.fingerprint = self.inner.fingerprint + ("+sees" if sees_facts else "")
        self.sees_facts = sees_facts
        self.shown: list[Workspace] = []

    def check(self, question: str, context: str) -> None:
        self.inner.check(question, context)

    async def act(self, workspace: Workspace) -> Action:
        self.shown.append(workspace)
        return await self.inner.act(workspace)


def facts_of(context: str) -> list[str]:
    return context.splitlines()[1:]


def oracle_nodes(trace: Trace) -> list[dict[str, Any]]:
    return [data for _, data in trace.workspaces() if data.get("oracle")]


def two_instances(name: str) -> tuple[Any, str]:
    """A hidden-facts item needing 2 or more levels, and the facts of another instance of its task."""
    items = get_task(name).generate(40, seed=5, facts="hidden")
    item = next(i for i in items if (i.required_depth or 0) >= 2)
    other = next(i.context for i in items if i.instance != item.instance)
    return item, other


@pytest.mark.parametrize("name", PAPER_TASKS)
async def test_no_h_call_depends_on_the_facts(name: str) -> None:
    item, other = two_instances(name)
    recording = Recording()
    result = await answer(item.question, depth=item.required_depth, policy=recording, context=item.context,
                          facts="hidden")
    assert (result.answer, result.status) == (item.answer, "ok")
    assert recording.shown and oracle_nodes(result.trace)
    for workspace in recording.shown:  # the calls' inputs hold no fact: only the header line
        assert workspace.context == header(item.context) == visible_context(other)
        assert not any(fact in workspace.model_dump_json() for fact in facts_of(item.context))
    # Replay every recorded call as a run on the other instance would show it: the same action.
    calls = [data for _, data in result.trace.calls()]
    assert len(calls) == len(recording.shown)
    for call in calls:
        seen = Workspace.model_validate({**call["input"], "context": visible_context(other)})
        action = await ExpertPolicy().act(seen)
        assert action.model_dump() == call["output"]


async def test_identical_views_share_calls_across_instances_but_subtrees_do_not() -> None:
    item, other = two_instances("permutation-powering")
    cache = CallCache()
    first = await answer(item.question, depth=5, context=item.context, facts="hidden", call_cache=cache)
    again = await answer(item.question, depth=5, context=other, facts="hidden", call_cache=cache)
    root_a, root_b = (next(c for _, c in r.trace.calls()) for r in (first, again))
    assert root_b["cached"] and root_a["input"] == root_b["input"]  # the root's view is the same
    assert (first.answer, first.status) == (item.answer, "ok")
    assert again.status == "ok"  # answered from the other facts, whatever the first run's answer was
    sigma_other = dict(line.split(" -> ") for line in facts_of(other))
    k, x = item.question.removeprefix("What is sigma^").removesuffix(")?").split("(")
    for _ in range(int(k)):
        x = sigma_other[x]
    assert again.answer == x


async def test_primitive_questions_are_the_environments_at_any_depth_without_a_call() -> None:
    item = get_task("permutation-powering").generate(1, seed=1, facts="hidden")[0]
    x = item.question.split("(")[1].rstrip(")?")
    recording = Recording()
    result = await answer(f"What is sigma^1({x})?", depth=0, policy=recording, context=item.context, facts="hidden")
    root = result.trace.graph.nodes[result.trace.root]
    assert (root["policy"], root["oracle"], root["status"]) == ("environment", True, "ok")
    assert result.answer == oracle_answer(item.context, f"What is sigma^1({x})?")
    assert recording.shown == [] and result.summary.policy_calls == 0
    assert result.summary.environment_answers == 1 and "1 node (1 by the environment)" in result.summary.line()
    assert result.trace.meta["facts"] == "hidden"


async def test_shown_mode_keeps_the_facts_in_view_and_asks_no_environment() -> None:
    item, _ = two_instances("union-find")
    recording = Recording()
    result = await answer(item.question, depth=item.required_depth, policy=recording, context=item.context)
    assert (result.answer, result.status) == (item.answer, "ok")
    assert oracle_nodes(result.trace) == [] and result.trace.meta["facts"] == "shown"
    assert all(w.context == item.context for w in recording.shown)


async def test_a_policy_that_sees_facts_is_shown_them_and_the_environment_still_answers() -> None:
    item, _ = two_instances("wildcard-search")
    recording = Recording(sees_facts=True)
    result = await answer(item.question, depth=item.required_depth, policy=recording, context=item.context,
                          facts="hidden")
    assert (result.answer, result.status) == (item.answer, "ok")
    assert all(w.context == item.context for w in recording.shown) and oracle_nodes(result.trace)


async def test_below_the_hidden_depth_the_root_guesses_and_only_depth_0_guesses_on_its_own() -> None:
    from helpers import unforced_guesses

    for name in PAPER_TASKS:
        item, _ = two_instances(name)
        result = await answer(item.question, depth=item.required_depth - 1, context=item.context, facts="hidden")
        assert result.status == "guess", name
        assert unforced_guesses(result.trace) == [], name


async def test_a_question_without_task_facts_cannot_hide_them() -> None:
    with pytest.raises(QuestionError, match="facts hidden needs a task's facts"):
        await answer("What is the sum of 1, 2, 3?", depth=2, facts="hidden")
    with pytest.raises(ValueError, match="facts must be one of shown, hidden, not 'some'"):
        check_facts("some")


async def test_replay_of_a_hidden_facts_run_reproduces_it() -> None:
    item, _ = two_instances("shortest-path")
    result = await answer(item.question, depth=item.required_depth, context=item.context, facts="hidden")
    report, again = await replay(result.trace)
    assert report.reproduced, report.text()
    assert len(oracle_nodes(again)) == len(oracle_nodes(result.trace)) > 0


# An LLM as H: the prompt's context is the header alone; the environment answers sigma^1 without a request.
TREE: dict[str, list[str] | str] = {"What is sigma^2(aa)?": ["What is sigma^1(aa)?", "What is sigma^1(ab)?"]}
FACTS = "\n".join([PERMUTATION, "aa -> ab", "ab -> ac", "ac -> aa"])


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(hch_responder(TREE, lambda q, answers: answers[-1]), models={"m"}) as running:
        yield running


async def test_an_llm_is_shown_only_the_header_and_never_asked_a_primitive_question(server: OpenAIServer) -> None:
    policy = LLMPolicy(model="m", base_url=server.base_url, api_key="sk-test", request_timeout=5.0)
    result = await answer("What is sigma^2(aa)?", depth=1, policy=policy, context=FACTS, facts="hidden")
    assert (result.answer, result.status) == ("ac", "ok")
    assert len(server.requests) == 2  # the root asked, then answered; the look-ups were the environment's
    for seen in server.requests:
        text = json.dumps(seen.body["messages"])
        assert PERMUTATION.replace('"', '\\"') in text and "aa -> ab" not in text
    assert [d["question"] for d in oracle_nodes(result.trace)] == ["What is sigma^1(aa)?", "What is sigma^1(ab)?"]
    assert (result.summary.environment_answers, result.summary.policy_calls) == (2, 2)


async def test_a_script_as_h_sees_only_the_header_and_asks_the_environment() -> None:
    import textwrap

    from hch.policies.scripted import ScriptedPolicy

    policy = ScriptedPolicy.parse(textwrap.dedent("""
        rules:
          - match: 'Where does (?P<x>[a-h]{2}) go in two steps\\?'
            ask: ["What is sigma^2({{ x }})?"]
            answer: "{{ answers[0] }}"
          - match: 'What is sigma\\^2\\((?P<x>[a-h]{2})\\)\\?'
            ask: ["What is sigma^1({{ x }})?"]
            answer: "{{ answers[0] }} then ask again"
    """), "s.yaml")
    result = await answer("Where does aa go in two steps?", depth=3, policy=policy, context=FACTS, facts="hidden")
    assert result.answer == "ab then ask again" and result.status == "ok"
    assert [d["question"] for d in oracle_nodes(result.trace)] == ["What is sigma^1(aa)?"]
    assert all("aa -> ab" not in json.dumps(data["input"]) for _, data in result.trace.calls())


def test_a_person_as_h_sees_only_the_header_and_the_environments_answers(tmp_path: Path) -> None:
    import os
    import sys

    import pexpect

    (tmp_path / "facts.txt").write_text(FACTS)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hch", "ask", "What is sigma^2(aa)?", "--depth", "1", "--policy", "human", "--context", "@facts.txt",
         "--facts", "hidden", "--no-cache", "--trace", "t.json"],
        cwd=str(tmp_path), encoding="utf-8", dimensions=(60, 200), timeout=30, env={**os.environ, "COLUMNS": "200"},
    )
    child.expect_exact("#0 n=1>")
    shown = str(child.before)
    assert "Permutation powering" in shown and "aa -> ab" not in shown

    def say(line: str, then: str) -> str:  # the line editor redraws the accepted line first: skip it
        child.sendline(line)
        child.expect_exact("\n")
        child.expect_exact(then)
        return str(child.before)

    say("ask What is sigma^1(aa)?", "#0 n=1 (1 queued)>")
    assert "ab" in say("go", "#0 n=1>")  # the environment answers: no prompt for the subquestion
    say("ask What is sigma^1(ab)?", "#0 n=1 (1 queued)>")
    say("go", "#0 n=1>")
    child.sendline("answer ac")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    trace = trace_data(tmp_path / "t.json")
    assert sum(bool(n.get("oracle")) for n in trace["nodes"]) == 2 and trace["graph"]["facts"] == "hidden"


async def test_required_depth_is_the_built_in_decompositions_an_h_spending_steps_on_look_ups_needs_less() -> None:
    """What hidden facts guarantee for any H: at depth 0 it sees no fact and cannot ask, so it can only
    guess. Above 0 the required depth is the depth the built-in decomposition needs; another H may need
    fewer levels, e.g. by chaining the environment's look-ups across the steps of one node."""
    from helpers import FunctionPolicy

    from hch.tasks.permutation_powering import parse_question
    from hch.workspace import Answer, Ask

    async def chain(ws: Workspace) -> Answer | Ask:
        parsed = parse_question(ws.question)
        assert parsed is not None and header(ws.context) == ws.context  # no fact in view
        k, x = parsed
        here = ws.answers[-1].answer if ws.answers else x
        return Answer(answer=here) if len(ws.answers) == k else Ask(questions=[f"What is sigma^1({here})?"])

    items = get_task("permutation-powering").generate(60, seed=1, facts="hidden")
    item = next(i for i in items if i.question.startswith("What is sigma^8("))
    assert item.required_depth == 3
    result = await answer(item.question, depth=1, policy=FunctionPolicy(chain), context=item.context, facts="hidden")
    assert (result.answer, result.status) == (item.answer, "ok")  # depth 1, eight steps of look-ups
    assert len(oracle_nodes(result.trace)) == 8
    blind = await answer(item.question, depth=0, policy=FunctionPolicy(chain), context=item.context, facts="hidden")
    assert blind.status == "error"  # at depth 0 the same H may not ask: it has nothing but a guess
