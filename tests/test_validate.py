"""Values checked where they enter: a policy's action too large (or not text) to use ends its node
before the trace, the cache or a prompt holds it, whatever kind of policy made it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import hch
from hch.policies.callable import CallablePolicy
from hch.policies.scripted import ScriptedPolicy
from hch.run.call_cache import CallCache
from hch.validate import MAX_ANSWER_CHARS, MAX_ASK_QUESTIONS, MAX_QUESTION_CHARS, action_problem
from hch.workspace import Answer, Ask, Workspace

BIG = 50 << 20  # 50 M characters


@pytest.mark.parametrize(("action", "max_asks", "problem"), [
    (Ask(questions=["q?"] * 10**6), 8, "the ask holds 1,000,000 subquestions; at most 1,000"),
    (Ask(questions=["q?"] * (MAX_ASK_QUESTIONS + 1)), 8, "at most 1,000 are accepted"),
    (Ask(questions=["q?"] * 3000), 5000, None),  # a larger max_asks raises the bound
    (Ask(questions=["fine?", "x" * (MAX_QUESTION_CHARS + 1)]), 8, "subquestion 2 is 20,001 characters long"),
    (Ask(questions=["x" * BIG]), 8, "subquestion 1 is 52,428,800 characters long"),
    (Answer(answer="y" * (MAX_ANSWER_CHARS + 1)), 8, "the answer is 1,000,001 characters long"),
    (Answer(answer="caf\udce9"), 8, "not valid text: character 4 is the byte 0xe9"),
    (Ask(questions=["ok?", "\ud800?"]), 8, "not valid text"),
    (Answer(answer="y" * MAX_ANSWER_CHARS), 8, None),
    (Ask(questions=["x" * MAX_QUESTION_CHARS] * 8), 8, None),
])
def test_action_problem_bounds_every_size_and_checks_the_text(action: Ask | Answer, max_asks: int,
                                                               problem: str | None) -> None:
    found = action_problem(action, max_asks)
    assert found == problem if problem is None else problem in (found or "")


GIANTS = {
    "a million subquestions": lambda: Ask(questions=[f"q{i}?" for i in range(10**6)]),
    "one 50 MB subquestion": lambda: Ask(questions=["x" * BIG]),
    "a 50 MB answer": lambda: Answer(answer="y" * BIG),
    "a 50 MB string": lambda: "z" * BIG,
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(GIANTS))
async def test_a_callable_returning_a_giant_action_fails_its_node_and_nothing_holds_it(
    tmp_path: Path, name: str
) -> None:
    giant = GIANTS[name]

    async def behaviour(ws: Workspace) -> object:
        if ws.question == "root?":
            return Ask(questions=["big?", "small?"]) if not ws.steps else " / ".join(a.answer for a in ws.answers)
        return giant() if ws.question == "big?" else "fine"

    cache = CallCache(tmp_path / "c.sqlite")
    policy = CallablePolicy(behaviour, "giant@1")
    result = await hch.answer("root?", depth=1, policy=policy, trace_path=tmp_path / "t.json", call_cache=cache)
    cache.close()
    answers = {data["question"]: (data["status"], data["answer"]) for _, data in result.trace.workspaces()}
    assert answers["small?"] == ("ok", "fine") and answers["big?"][0] == "error"
    assert "the policy's action cannot be used" in answers["big?"][1] and "at most" in answers["big?"][1]
    assert (tmp_path / "t.json").stat().st_size < 1 << 20  # neither the trace nor the cache holds it
    assert (tmp_path / "c.sqlite").stat().st_size < 1 << 20


@pytest.mark.anyio
async def test_a_scripted_template_asking_an_overlong_question_fails_its_node_in_one_line() -> None:
    script = ScriptedPolicy.parse(textwrap.dedent("""
        rules:
          - match: 'long (?P<n>\\d+)'
            ask: ["{{ 'x' * (n|int) }}?"]
            answer: "{{ answers[0] }}"
        fallback: {answer: "leaf"}
    """))
    result = await hch.answer("long 30000", depth=1, policy=script)
    root = result.trace.graph.nodes[result.trace.root]
    assert root["status"] == "error" and "subquestion 1 is 30,001 characters long" in root["answer"]
    assert "\n" not in root["answer"]
