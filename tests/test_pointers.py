"""Pointer mode: messages, $N pointers numbered per view, Expand, bandwidth, cache sharing of identical views."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FunctionPolicy

import hch
from hch.errors import QuestionError
from hch.limits import Limits
from hch.run.call_cache import CallCache, call_key
from hch.run.pointers import MESSAGE_CHARS, Messages, View
from hch.workspace import Action, Answer, Ask, Expand, SubAnswer, Workspace

pytestmark = pytest.mark.anyio

NUMBERS = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]
LONG = ", ".join(map(str, NUMBERS))  # longer than MESSAGE_CHARS: stored as two halves
POINTERS = Limits(pointers=True)


def views_of(policy: FunctionPolicy) -> list[Workspace]:
    return policy.seen  # type: ignore[attr-defined, no-any-return]


def recording(behaviour: object, fingerprint: str = "test") -> FunctionPolicy:
    seen: list[Workspace] = []

    async def act(workspace: Workspace) -> Action:
        seen.append(workspace)
        return behaviour(workspace)  # type: ignore[operator, no-any-return]

    policy = FunctionPolicy(act, fingerprint)
    policy.seen = seen  # type: ignore[attr-defined]
    return policy


def test_a_long_message_is_stored_as_halves_and_resolves_to_itself() -> None:
    messages = Messages()
    pointer = messages.put(LONG)
    top = messages.table[pointer[2:]]
    assert len(LONG) > MESSAGE_CHARS and top.count("$m") == 2 and len(top) < MESSAGE_CHARS
    assert messages.resolve(pointer) == LONG
    assert messages.put(LONG) == pointer  # content-addressed: one content, one pointer


def test_markup_nests_and_unbalanced_brackets_are_refused() -> None:
    messages = Messages()
    inner = messages.markup("a [[b [[c]] d]] e")
    assert messages.resolve(inner) == "a b c d e" and inner.count("$m") == 1
    for bad in ("a [[b", "b]] a"):
        with pytest.raises(ValueError, match=r"\[\["):
            messages.markup(bad)


async def test_the_expert_routes_the_halves_of_a_long_list_without_reading_them() -> None:
    result = await hch.answer(f"What is the sum of [[{LONG}]]?", depth=4, limits=POINTERS)
    assert (result.answer, result.status) == (str(sum(NUMBERS)), "ok")
    trace = result.trace
    root = trace.graph.nodes[trace.root]
    assert [e["pointer"] for e in root["expansions"]] == ["$1"]  # it read only the top: "$2, $3"
    first = trace.graph.nodes[trace.node_calls(trace.root)[0]]
    assert first["input"]["question"] == "What is the sum of $1?"
    assert first["output"] == {"kind": "expand", "pointer": "$1"}
    second = trace.graph.nodes[trace.node_calls(trace.root)[1]]
    assert list(second["input"]["expanded"]) == [{"pointer": "$1", "content": "$2, $3", "step": 0}]
    assert second["output"]["questions"] == ["What is the sum of $2?", "What is the sum of $3?"]  # routed unread
    children = [trace.graph.nodes[child] for child, _ in trace.children(trace.root)]
    halves = {child["question"] for child in children}
    assert halves == {f"What is the sum of {root['pointers'][p]}?" for p in ("$2", "$3")}
    for child in children:  # each half reads its own half: "$1" in its view
        assert [e["pointer"] for e in child["expansions"]] == ["$1"]
    assert trace.meta["messages"] and Messages(trace.meta["messages"]).resolve(root["question"]) == (
        f"What is the sum of {LONG}?"
    )


async def test_identical_views_share_calls_though_their_pointers_lead_to_different_data(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    first = await hch.answer("What is the sum of [[2, 3]]?", depth=1, limits=POINTERS, call_cache=cache)
    second = await hch.answer("What is the sum of [[4, 5]]?", depth=1, limits=POINTERS, call_cache=cache)
    assert (first.answer, second.answer) == ("5", "9")
    hits = [data["cached"] for _, data in second.trace.calls()]
    assert hits == [True, False]  # "What is the sum of $1?" is one view; after the expansion they differ
    cache.close()


async def test_within_a_run_identical_views_share_calls_too(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    result = await hch.answer(f"What is the sum of [[{LONG}]]?", depth=4, limits=POINTERS, call_cache=cache)
    children = [child for child, _ in result.trace.children(result.trace.root)]
    first_calls = [result.trace.graph.nodes[result.trace.node_calls(child)[0]] for child in children]
    assert sorted(call["cached"] for call in first_calls) == [False, True]  # both see "What is the sum of $1?"
    cache.close()


async def test_pointers_are_numbered_by_first_appearance_and_stay_put() -> None:
    messages = Messages()
    view = View(messages, None)
    a, b = messages.put("alpha"), messages.put("beta")
    shown = view.show(Workspace(question=f"Compare {b} with {a} and {b}", depth=1))
    assert shown.question == "Compare $1 with $2 and $1" and shown.pointers and shown.bandwidth_left is None
    assert view.expand("$2", 0) is None
    step = (SubAnswer(question=f"What is {a}?", answer=messages.put("gamma")),)
    again = view.show(Workspace(question=f"Compare {b} with {a} and {b}", depth=1, steps=(step,)))
    assert again.expanded[0].pointer == "$2" and again.expanded[0].content == "alpha"
    assert again.steps[0][0].answer == "$3" and again.steps[0][0].question == "What is $2?"


async def test_expanding_a_pointer_that_does_not_exist_or_twice_is_refused() -> None:
    script: list[Action] = [
        Expand(pointer="$9"), Expand(pointer="$1"), Expand(pointer="$1"), Answer(answer="it holds $7"),
        Answer(answer="it holds $1"),
    ]
    policy = recording(lambda ws: script[len(views_of(policy)) - 1])
    result = await hch.answer("What is in [[the box]]?", depth=0, policy=policy, limits=POINTERS)
    refusals = [view.refusal for view in views_of(policy)]
    assert refusals[1] is not None and "there is no pointer $9 in your workspace; it shows only $1" in refusals[1]
    assert refusals[2] is None and views_of(policy)[2].expanded[0].content == "the box"
    assert refusals[3] is not None and "$1 is already expanded" in refusals[3]
    assert refusals[4] is not None and "there is no pointer $7" in refusals[4]  # in an answer, too
    assert (result.answer, result.status) == ("it holds the box", "ok")


async def test_an_expansion_past_the_bandwidth_is_refused_with_what_is_left() -> None:
    def act(ws: Workspace) -> Action:
        if ws.refusal is None:
            return Expand(pointer="$1")
        return Answer(answer="$1", guess=True)  # passes the data up unread

    policy = recording(act)
    question = "Sort [[zebra, apple, mango]]"
    result = await hch.answer(question, depth=0, policy=policy, limits=Limits(bandwidth=12))
    first, second = views_of(policy)
    assert first.bandwidth_left == 12 - len("Sort $1")
    assert second.refusal == (
        "expanding $1 would show 19 characters, and only 5 of this workspace's bandwidth of 12 characters are "
        "left: pass $1 on unexpanded (in a subquestion or your answer), or answer with what you have"
    )
    assert (result.answer, result.status) == ("zebra, apple, mango", "guess")  # resolved for the user


async def test_a_long_sub_answer_reaches_the_asker_as_a_pointer() -> None:
    long = "x" * (MESSAGE_CHARS + 1)

    def act(ws: Workspace) -> Action:
        if ws.depth == 0:
            return Answer(answer=long)
        if not ws.steps:
            return Ask(questions=["Say it"])
        return Answer(answer=f"it said {ws.answers[0].answer}")

    policy = recording(act)
    result = await hch.answer("Relay", depth=1, policy=policy, limits=POINTERS)
    assert views_of(policy)[-1].answers[0].answer == "$1"
    assert result.answer == f"it said {long}"


async def test_a_long_context_is_one_pointer_and_short_text_stays_inline() -> None:
    policy = recording(lambda ws: Answer(answer="ok"))
    await hch.answer("Q", depth=0, policy=policy, context="facts " * 20, limits=POINTERS)
    await hch.answer("Q2", depth=0, policy=policy, context="short facts", limits=POINTERS)
    assert [view.context for view in views_of(policy)] == ["$1", "short facts"]


async def test_expand_without_pointer_mode_is_refused() -> None:
    policy = recording(lambda ws: Expand(pointer="$1") if ws.refusal is None else Answer(answer="fine"))
    result = await hch.answer("Q", depth=0, policy=policy)
    assert "pointer mode is off" in (views_of(policy)[1].refusal or "") and result.answer == "fine"


async def test_runs_without_pointer_mode_keep_their_dumps_and_keys() -> None:
    seen = Workspace(question="What is 2 + 3?", depth=2, context="ctx", refusal="r", copy="abc",
                     steps=((SubAnswer(question="a?", answer="1"),),))
    # the key the code before pointer mode gave this workspace (computed with that code)
    assert call_key("expert", seen) == "961058abd634f345c6ea875fad997b5fa74842966432918ccce82a8708008934"
    assert Limits().model_dump() == {
        "max_asks_per_step": 8, "max_cost": None, "max_nodes": 100000, "max_refusals": 3, "max_steps_per_node": 8,
        "max_total_tokens": None, "node_timeout": None, "run_timeout": None,
    }
    plain = Workspace(question="What is 2 + 3?", depth=1)
    assert set(plain.model_dump()) == {"question", "depth", "context", "steps", "max_asks", "steps_left", "refusal"}
    assert call_key("expert", plain) == call_key("expert", plain.model_copy(update={"pointers": False}))
    assert "pointers" not in Limits().model_dump() and "bandwidth" not in Limits().model_dump()
    assert Limits(bandwidth=5).pointers
    for bad in (0, -1, float("nan"), "many"):
        with pytest.raises(ValueError, match="bandwidth"):
            Limits(bandwidth=bad)  # type: ignore[arg-type]
    result = await hch.answer("What is the sum of 2, 3?", depth=0)
    assert "messages" not in result.trace.meta
    assert not any("pointers" in data for _, data in result.trace.workspaces())


async def test_a_dollar_before_a_digit_in_the_question_is_refused_in_pointer_mode() -> None:
    with pytest.raises(QuestionError, match=r"'\$3' would be a pointer"):
        await hch.answer("What is $3 plus [[4]]?", depth=1, limits=POINTERS)
    with pytest.raises(QuestionError, match=r"not closed"):
        await hch.answer("What is [[4?", depth=1, limits=POINTERS)
    with pytest.raises(QuestionError, match=r"'\$12' would be a pointer"):
        await hch.answer("What is [[4]]?", depth=1, context="costs $12", limits=POINTERS)
    result = await hch.answer("What is the sum of 2, 3?", depth=0)  # outside pointer mode `$3` is text
    assert result.answer == "5"


def test_bad_bandwidth_and_pointers_on_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    for bad in ("0", "-1", "nan", "x"):
        done = subprocess.run([sys.executable, "-m", "hch", "ask", "What is [[2]]?", "--bandwidth", bad],
                              cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "--bandwidth" in done.stderr
    done = subprocess.run([sys.executable, "-m", "hch", "ask", "What is the sum of $2?", "--pointers", "--no-cache"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and "would be a pointer" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "hch", "ask", f"What is the sum of [[{LONG}]]?", "--bandwidth", "60", "--depth", "4",
         "--no-cache", "--quiet"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == str(sum(NUMBERS)), done.stderr


async def test_where_the_bandwidth_is_too_small_to_read_the_expert_guesses_honestly() -> None:
    result = await hch.answer(f"What is the sum of [[{LONG}]]?", depth=4, limits=Limits(bandwidth=22))
    assert result.status == "guess"  # it sees its question and nothing more: it may not read, so it guesses
    root = result.trace.graph.nodes[result.trace.root]
    assert root["expansions"] == []


def test_a_sweep_in_pointer_mode_grades_the_resolved_answers(tmp_path: Path) -> None:
    lines = [f'{{"question": "What is the sum of [[{LONG}]]?", "answer": "{sum(NUMBERS)}"}}',
             '{"question": "What is the sum of [[2, 3]]?", "answer": "5"}']
    (tmp_path / "q.jsonl").write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "hch", "sweep", "q.jsonl", "--depths", "4", "--bandwidth", "80", "--no-cache",
         "--out", "out"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    runs = [line for line in (tmp_path / "out" / "runs.jsonl").read_text().splitlines() if line]
    assert len(runs) == 2 and all('"correct":true' in line for line in runs)
    bad = subprocess.run([sys.executable, "-m", "hch", "sweep", "q.jsonl", "--depths", "1", "--bandwidth", "-1"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--bandwidth" in bad.stderr and "Traceback" not in bad.stderr
