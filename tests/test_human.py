"""The person at the terminal: real pseudo-terminal sessions of `hch ask --policy human`, and the
prompt's commands driven through the API."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from rich.console import Console

import hch
from hch.errors import Stopped
from hch.policies.human import HumanPolicy, ListLines
from hch.workspace import Answer, Ask, SubAnswer, Workspace

STYLE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # styles, and the line editor's cursor moves and modes
QUESTION = "What is 1+2+3+4? \x1b[31m(red)"
CONTEXT = "numbers \x1b]0;pwned\x07 only"


def spawn(tmp_path: Path, *extra: str) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hch", "ask", QUESTION, "--depth", "2", "--policy", "human", "--context", CONTEXT,
         "--cache", str(tmp_path / "cache.sqlite"), "--trace", "t.json", *extra],
        cwd=str(tmp_path), encoding="utf-8", dimensions=(60, 200), timeout=30,
        env={**os.environ, "COLUMNS": "200"},
    )
    return child


def say(child: pexpect.spawn, line: str, then: str) -> str:
    """Type `line`, wait for `then` (a literal), and return what was printed before it (unstyled).

    The line editor redraws the prompt with the line when it is accepted (up to a newline): that redraw
    is skipped, so `then` matches the next prompt only.
    """
    child.sendline(line)
    child.expect_exact("\n")
    child.expect_exact(then)
    return unstyled(child.before)


def unstyled(text: object) -> str:
    """Terminal output without the colour and weight codes rich adds and the line editor's cursor moves."""
    return STYLE.sub("", str(text))


def finish(child: pexpect.spawn) -> tuple[str, int]:
    """Wait for the end; the output as printed (styles included) and the exit status."""
    child.expect(pexpect.EOF)
    output = str(child.before)
    child.close()
    assert child.exitstatus is not None
    return output, child.exitstatus


def test_a_person_answers_a_depth_2_question_with_two_concurrent_subquestions(tmp_path: Path) -> None:
    child = spawn(tmp_path)
    child.expect_exact("#0 n=2>")
    root = str(child.before)
    assert "the root question · HCH_2" in root
    assert "you may ask subquestions" in root
    # content is data: control sequences are shown escaped, never sent to the terminal raw
    assert "\\x1b[31m(red)" in root and "\x1b[31m(red)" not in root
    assert "\\x1b]0;pwned\\x07" in root and "\x1b]0;" not in root

    say(child, "ask What is 1+2?", "#0 n=2 (1 queued)>")
    bogus = say(child, "frobnicate now", "#0 n=2 (1 queued)>")
    assert "unknown command 'frobnicate'" in bogus
    say(child, "answer", "#0 n=2 (1 queued)>")  # an empty answer is explained, the queue kept
    assert "the answer is empty" in unstyled(child.before)
    say(child, "ask What is 3+4?", "#0 n=2 (2 queued)>")

    first = say(child, "go", "n=1>")
    assert "What is 1+2?" in first
    assert "subquestion 1 of step 1 of #0 · HCH_1 · 1 more waiting" in first  # the other one is queued
    second = say(child, "answer 3", "n=1>")
    assert "What is 3+4?" in second and "subquestion 2 of step 1 of #0" in second
    assert "more waiting" not in second

    say(child, "ask What is 3 plus 4, really?", "n=1 (1 queued)>")
    leaf = say(child, "go", "n=0>")
    assert "What is 3 plus 4, really?" in leaf and "level 2" in leaf and "HCH_0" in leaf
    refused = say(child, "ask What is 3?", "n=0>")
    assert "cannot ask subquestions" in refused
    back = say(child, "answer 7", "n=1>")
    assert "What is 3 plus 4, really? → 7" in back
    again = say(child, "answer 7", "#0 n=2>")
    assert "1. What is 1+2? → 3" in again and "2. What is 3+4? → 7" in again
    child.sendline("answer 10")
    output, status = finish(child)

    assert status == 0, output
    assert "\n10\r\n" in unstyled(output)
    assert "\x1b[31m(red)" not in output and "\\x1b[31m(red)" in output  # the final tree escapes it too
    trace = hch.load_trace(tmp_path / "t.json")
    assert trace.meta["answer"] == "10" and trace.meta["status"] == "ok"
    nodes = {data["question"]: (node, data) for node, data in trace.workspaces()}
    assert {q: d["answer"] for q, (_, d) in nodes.items()} == {
        QUESTION: "10", "What is 1+2?": "3", "What is 3+4?": "7", "What is 3 plus 4, really?": "7",
    }
    assert {d["policy"] for _, d in nodes.values()} == {"human"}
    root_id = nodes[QUESTION][0]
    children = [(trace.graph.nodes[c]["question"], e["step"], e["order"]) for c, e in trace.children(root_id)]
    assert children == [("What is 1+2?", 0, 0), ("What is 3+4?", 0, 1)]  # one step: asked together
    calls = [d for _, d in trace.calls()]
    assert len(calls) == 6
    assert calls[0]["raw"]["typed"] == ["ask What is 1+2?", "frobnicate now", "answer", "ask What is 3+4?", "go"]
    assert set(calls[0]["raw"]) == {"typed", "shown_at", "answered_at", "thinking_seconds", "waited_seconds"}


def test_an_interrupted_session_resumes_asking_only_what_was_not_answered(tmp_path: Path) -> None:
    child = spawn(tmp_path)
    child.expect_exact("#0 n=2>")
    say(child, "ask What is 1+2?", "(1 queued)>")
    say(child, "ask What is 3+4?", "(2 queued)>")
    say(child, "go", "n=1>")
    assert "#3 n=1" not in unstyled(child.before)
    second = say(child, "answer 3", "n=1>")
    assert "workspace #3 · level 1 · subquestion 2 of step 1 of #0" in second
    child.sendintr()  # Ctrl-C at the prompt of the second subquestion
    output, status = finish(child)
    assert status == 130
    assert "hch: interrupted; the trace of what completed is in t.json" in unstyled(output)
    trace = hch.load_trace(tmp_path / "t.json")
    assert trace.meta["status"] == "interrupted"
    assert {d["question"]: d["status"] for _, d in trace.workspaces()} == {
        QUESTION: "interrupted", "What is 1+2?": "ok", "What is 3+4?": "interrupted",
    }

    child = spawn(tmp_path)  # the root's asks and the first answer come from the call cache
    child.expect_exact("n=1>")
    shown = unstyled(child.before)
    assert "What is 3+4?" in shown and "the root question" not in shown and "What is 1+2?" not in shown
    assert "workspace #3 · level 1" in shown  # the id it was shown with before: ids are stable across sessions
    say(child, "ask What is 3 plus 4, really?", "(1 queued)>")
    say(child, "go", "n=0>")
    child.sendeof()  # Ctrl-D at the leaf's prompt
    output, status = finish(child)
    assert status == 130
    assert unstyled(output).strip().endswith("hch: interrupted; the trace of what completed is in t.json")
    trace = hch.load_trace(tmp_path / "t.json")
    leaf = next(d for _, d in trace.workspaces() if d["question"] == "What is 3 plus 4, really?")
    assert leaf["status"] == "interrupted" and trace.meta["status"] == "interrupted"

    child = spawn(tmp_path)
    child.expect_exact("n=0>")
    shown = unstyled(child.before)
    assert "What is 3 plus 4, really?" in shown and "What is 3+4?" not in shown
    leaf_id = re.search(r"workspace #(\d+) · level 2", shown)
    assert leaf_id is not None
    say(child, "answer 7", "n=1>")
    say(child, "answer 7", "n=2>")
    child.sendline("answer 10")
    output, status = finish(child)
    assert status == 0, output
    tree = unstyled(output)  # the final tree numbers every node as it was shown, in whichever session
    assert "#0 n=2" in tree and "#3 n=1 What is 3+4? → 7" in tree
    assert f"#{leaf_id[1]} n=0 What is 3 plus 4, really? → 7" in tree
    summary = hch.load_trace(tmp_path / "t.json").meta["summary"]
    assert (summary["policy_calls"], summary["call_cache_hits"]) == (3, 3)


def workspace(**fields: object) -> Workspace:
    return Workspace.model_validate({"question": "Q?", "depth": 1, **fields})


def policy(*lines: str) -> tuple[HumanPolicy, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None, highlight=False)
    return HumanPolicy(console=console, lines=ListLines(list(lines))), out


@pytest.mark.anyio
async def test_several_asks_make_one_step_and_drop_forgets_queued_ones() -> None:
    typed = ["ASK\tA?", "ask typo", "ask B?", "drop 2", "drop 9", "go"]
    human, out = policy(*typed)
    reply = await human.act(workspace())
    assert reply.action == Ask(questions=["A?", "B?"])
    assert reply.raw is not None and reply.raw["typed"] == typed  # the session's transcript goes into the trace
    assert "dropped: typo" in out.getvalue() and "drop takes the number" in out.getvalue()


@pytest.mark.anyio
async def test_answer_with_queued_asks_is_refused_until_they_are_sent_or_dropped() -> None:
    human, out = policy("ask A?", "answer 5", "drop", "guess 5")
    assert (await human.act(workspace())).action == Answer(answer="5", guess=True)
    assert "1 queued subquestion(s) not sent" in out.getvalue()


@pytest.mark.anyio
async def test_a_step_may_not_ask_more_than_max_asks() -> None:
    human, out = policy("ask A?", "ask B?", "go")
    assert (await human.act(workspace(max_asks=1))).action == Ask(questions=["A?"])
    assert "at most 1 subquestions" in out.getvalue()


@pytest.mark.anyio
async def test_the_workspace_shows_sub_answers_budget_and_refusal_escaped() -> None:
    sub = SubAnswer(question="x?", answer="\x1b[2Jgone", status="guess")
    human, out = policy("show", "help", "answer ok")
    await human.act(workspace(steps=((sub,),), steps_left=3, refusal="no \x07 bell"))
    text = out.getvalue()
    assert "1. x? → \\x1b[2Jgone [guess]" in text
    assert "3 steps of asking left · up to 8 subquestions per step" in text
    assert "Refused: no \\x07 bell" in text and "\x07" not in text and "\x1b" not in text
    assert text.count("Question: Q?") == 2  # shown, then shown again
    assert "guess <text>" in text


@pytest.mark.anyio
async def test_end_of_input_or_quit_stops_the_run() -> None:
    for lines in ([], ["quit"]):
        human, _ = policy(*lines)
        with pytest.raises(Stopped):
            await human.act(workspace())


def test_the_fingerprint_names_the_person() -> None:
    assert HumanPolicy().fingerprint == "human"
    assert HumanPolicy(name="ada").fingerprint == "human(ada)"
    assert hch.make_policy("human:ada").fingerprint == "human(ada)"


def test_line_editing_and_history_at_the_prompt(tmp_path: Path) -> None:
    child = spawn(tmp_path, "--depth", "1")
    child.expect_exact("#0 n=1>")
    say(child, "ask What is 1+2?", "(1 queued)>")
    child.send("\x1b[A")  # up: the line typed before comes back
    child.send("\x7f\x7f\x7f+5?")  # three backspaces, then the edit
    child.sendline("")
    child.expect_exact("\n")
    child.expect_exact("(2 queued)>")
    say(child, "go", "n=0>")
    child.send("answe 3")  # a typo, mended in place: left twice, then the missing letter
    child.send("\x1b[D\x1b[D")
    say(child, "r", "n=0>")
    say(child, "answer 6", "n=1>")
    child.sendline("answer 9")
    output, status = finish(child)
    assert status == 0, output
    trace = hch.load_trace(tmp_path / "t.json")
    leaves = {d["question"]: d["answer"] for _, d in trace.workspaces() if d["depth"] == 0}
    assert leaves == {"What is 1+2?": "3", "What is 1+5?": "6"}


def sweep_spawn(tmp_path: Path, *extra: str) -> pexpect.spawn:
    (tmp_path / "q.jsonl").write_text("".join(
        f'{{"id": "q{i}", "question": "What is {i} + {i}?", "answer": "{2 * i}"}}\n' for i in (1, 2, 3)
    ))
    return pexpect.spawn(
        sys.executable,
        ["-m", "hch", "sweep", "q.jsonl", "--depths", "0", "--policy", "human", "--out", "o", "--no-plot",
         "--cache", str(tmp_path / "cache.sqlite"), *extra],
        cwd=str(tmp_path), encoding="utf-8", dimensions=(60, 200), timeout=30, env={**os.environ, "COLUMNS": "200"},
    )


def test_a_sweep_participant_never_sees_gold_or_scores_and_no_bar_draws_over_the_prompt(tmp_path: Path) -> None:
    child = sweep_spawn(tmp_path)
    child.expect_exact("n=0>")
    shown = say(child, "answer 2", "n=0>")  # right
    assert "1 of 3 runs done" in shown
    say(child, "answer 5", "n=0>")  # wrong
    child.sendline("answer 6")  # right
    output, status = finish(child)
    assert status == 0, output
    text = unstyled(output)
    assert "━" not in output and "correct" not in text and "acc" not in text and "2/3" not in text
    assert "figures withheld from the participant" in text
    rows = list(csv.DictReader((tmp_path / "o" / "summary.csv").open()))
    assert (rows[0]["graded"], rows[0]["correct"]) == ("3", "2")  # the experimenter's files have them


def test_quit_in_a_sweep_stops_at_once_and_cleanly(tmp_path: Path) -> None:
    child = sweep_spawn(tmp_path)
    child.expect_exact("n=0>")
    second = say(child, "answer 2", "n=0>")
    assert "more waiting" in second  # the third question waits behind this one
    child.sendline("quit")
    output, status = finish(child)
    text = unstyled(output)
    assert status == 130, text
    assert "hch: interrupted; finished runs are kept in o" in text
    assert "unexpected" not in text and "Traceback" not in text
    assert "workspace" not in text.split("quit", 1)[1]  # no workspace is shown after quitting
    again = sweep_spawn(tmp_path)  # the answered question is not asked again
    again.expect_exact("n=0>")
    assert "What is 1 + 1?" not in unstyled(again.before)
    again.sendeof()
    assert finish(again)[1] == 130


def test_answers_from_the_cache_keep_their_original_latency_and_thinking_time(tmp_path: Path) -> None:
    child = spawn(tmp_path, "--depth", "1")
    child.expect_exact("#0 n=1>")
    say(child, "ask What is 1+2?", "(1 queued)>")
    say(child, "go", "n=0>")
    say(child, "answer 3", "#0 n=1>")
    child.sendeof()
    assert finish(child)[1] == 130
    child = spawn(tmp_path, "--depth", "1")  # the root's ask and the leaf's answer come from the cache
    child.expect_exact("#0 n=1>")
    child.sendline("answer 3")
    output, status = finish(child)
    assert status == 0, output
    trace = hch.load_trace(tmp_path / "t.json")
    cached = [d for _, d in trace.calls() if d["cached"]]
    assert len(cached) == 2
    for call in cached:
        assert call["latency"] == 0.0 and isinstance(call["original_latency"], float)  # served now, timed then
        assert {"thinking_seconds", "shown_at", "answered_at"} <= set(call["raw"])
    fresh = next(d for _, d in trace.calls() if not d["cached"])
    assert fresh["original_latency"] is None and fresh["latency"] > 0
    leaf_call = next(node for node, d in trace.calls() if d["cached"] and d["output"]["kind"] == "answer")
    shown = subprocess.run([sys.executable, "-m", "hch", "show", "t.json", "--node", str(leaf_call)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert "took" in shown.stdout and "when it was made" in shown.stdout and "thinking_seconds" in shown.stdout


def test_a_node_timeout_counts_down_at_the_prompt_and_says_when_it_fires(tmp_path: Path) -> None:
    child = spawn(tmp_path, "--depth", "0", "--node-timeout", "3")
    child.expect(r"#0 n=0 \[\d+s left\]>")
    assert "to act at this workspace (a time limit applies)" in unstyled(child.before)
    child.expect_exact("time is up")  # nothing typed: the limit fires and says so
    output, _ = finish(child)
    assert "n=0 [" not in unstyled(output).split("\n", 1)[-1]  # no prompt left hanging after it
    trace = hch.load_trace(tmp_path / "t.json")
    root = trace.graph.nodes[trace.root]
    assert (root["status"], root["limit"]) == ("error", "node_timeout")


# -- what a person types that is not usable text is explained, never the node's failure (issue 14) -----

def test_bytes_that_are_not_utf8_at_the_terminal_are_explained_and_asked_again(tmp_path: Path) -> None:
    child = spawn(tmp_path, "--depth", "1")
    child.expect_exact("#0 n=1>")
    for typed, problem in [(b"answer caf\xe9", "character 11 is the byte 0xe9, which is not UTF-8"),
                           (b"\xff\xfe", "character 1 is the byte 0xff"),
                           (b"ask what is \xc3?", "character 13 is the byte 0xc3")]:
        os.write(child.child_fd, typed + b"\r")
        child.expect_exact("\n")
        child.expect_exact("#0 n=1>")
        shown = unstyled(child.before)
        assert f"that line is not valid text ({problem}" in shown and "); type it again" in shown, shown
    child.sendline("answer café")
    output, status = finish(child)
    assert status == 0, output
    trace = hch.load_trace(tmp_path / "t.json")
    assert trace.meta["answer"] == "café"
    typed = next(d for _, d in trace.calls())["raw"]["typed"]
    assert typed[0] == "answer caf\\udce9" and typed[-1] == "answer café"  # kept, as files can hold it


def test_piped_lines_that_are_not_text_or_too_long_are_explained_and_dropped(tmp_path: Path) -> None:
    from hch.policies.human import MAX_LINE_CHARS

    lines = b"answer caf\xe9\nanswer " + b"x" * (MAX_LINE_CHARS + 10) + b"\nask " + b"q" * 30_000 + b"\nanswer 10\n"
    done = subprocess.run(
        [sys.executable, "-m", "hch", "ask", "What is 1+2+3+4?", "--depth", "1", "--policy", "human", "--no-cache",
         "--trace", "t.json"], input=lines, cwd=tmp_path, capture_output=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0] == b"10"
    err = done.stderr.decode()
    assert "that line is not valid text (character 11 is the byte 0xe9" in err
    assert f"that line is over {MAX_LINE_CHARS:,} characters long and was dropped" in err
    assert "the question is 30,000 characters long; at most 20,000 are accepted" in err
    assert (tmp_path / "t.json").stat().st_size < 100_000  # nothing of the long lines was kept
def test_a_person_sees_the_calls_left_and_gives_shares_in_a_budgeted_run(tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hch", "ask", "What is 1+2+3+4?", "--budget", "6", "--policy", "human",
         "--cache", str(tmp_path / "cache.sqlite"), "--trace", "t.json"],
        cwd=str(tmp_path), encoding="utf-8", dimensions=(60, 200), timeout=30, env={**os.environ, "COLUMNS": "200"},
    )
    child.expect_exact("#0 n=6 calls=5>")
    assert "5 more calls for you and your subquestions together" in unstyled(child.before)
    say(child, "ask What is 1+2?", "calls=5 (1 queued)>")
    say(child, "ask What is 3+4?", "calls=5 (2 queued)>")
    assert "add up to 9" in say(child, "budgets 5 4", "calls=5 (2 queued)>")
    assert "whole numbers" in say(child, "budgets 3 x", "calls=5 (2 queued)>")
    say(child, "budgets 3", "calls=5 (2 queued)>")
    assert "1 budgets for 2 queued" in say(child, "go", "calls=5 (2 queued)>")
    say(child, "budgets 3, 1", "calls=5 (2 queued)>")
    first = say(child, "go", "n=5 calls=2>")
    assert "What is 1+2?" in first
    say(child, "ask What is 1?", "n=5 calls=2 (1 queued)>")
    assert "pays for at most 1 subquestion" in say(child, "ask What is 2?", "n=5 calls=2 (1 queued)>")
    say(child, "drop", "n=5 calls=2>")
    second = say(child, "answer 3", "n=5 calls=0>")
    assert "What is 3+4?" in second and "0 calls left: this is your last action" in second
    assert "pays for at most 0" in say(child, "ask What is 3?", "n=5 calls=0>")
    say(child, "answer 7", "#0 n=6 calls=2>")
    child.sendline("answer 10")
    output, status = finish(child)
    assert status == 0, output
    trace = hch.load_trace(tmp_path / "t.json")
    assert [(e["budget"], e["returned"]) for _, e in trace.children(trace.root)] == [(3, 2), (1, 0)]
    assert trace.graph.nodes[trace.root]["spent"] == 4
