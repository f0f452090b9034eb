"""Pointer mode for a person at the terminal: `expand $N`, through a real pseudo-terminal and through the API."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pexpect
import pytest
from rich.console import Console

import hch
from hch.policies.human import HumanPolicy, ListLines
from hch.workspace import Answer, Expand, Expansion, Workspace

QUESTION = "Report [[secret \x1b[31m data]]"
STYLE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # styles, and the line editor's cursor moves and modes


def say(child: pexpect.spawn, line: str, then: str) -> str:
    """Type `line`, wait for the prompt `then` after the line editor's redraw; what was printed, unstyled."""
    child.sendline(line)
    child.expect_exact("\n")
    child.expect_exact(then)
    return STYLE.sub("", str(child.before))


def human(*lines: str) -> tuple[HumanPolicy, io.StringIO]:
    out = io.StringIO()
    return HumanPolicy(console=Console(file=out, width=120, color_system=None, highlight=False),
                       lines=ListLines(list(lines))), out


def test_a_person_passes_a_pointer_on_unread_and_expands_one_at_the_prompt(tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hch", "ask", QUESTION, "--depth", "1", "--policy", "human", "--pointers", "--no-cache",
         "--trace", "t.json"],
        cwd=str(tmp_path), encoding="utf-8", dimensions=(60, 200), timeout=30, env={**os.environ, "COLUMNS": "200"},
    )
    child.expect_exact("#0 n=1>")
    root = STYLE.sub("", str(child.before))
    assert "Question: Report $1" in root and "expand $N" in root and "secret" not in root
    say(child, "ask What does $1 say?", "(1 queued)>")
    assert "Question: What does $1 say?" in say(child, "go", "n=0>")
    refused = say(child, "expand $5", "n=0>")  # the workspace is shown again, with the refusal
    assert "there is no pointer $5 in your workspace; it shows only $1" in refused
    shown = say(child, "expand $1", "n=0>")
    assert "Expanded $1: secret \\x1b[31m data" in shown and "\x1b[31m data" not in shown  # data, escaped
    back = say(child, "answer it says $1", "#0 n=1>")
    assert "1. What does $1 say? → it says $1" in back and "Expanded" not in back  # the root never read it
    child.sendline("answer Done: $1")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    trace = hch.load_trace(tmp_path / "t.json")
    assert trace.meta["answer"] == "Done: secret \x1b[31m data"  # resolved for the user


@pytest.mark.anyio
async def test_expand_shows_bandwidth_and_expansions_and_is_explained_where_it_cannot_be() -> None:
    person, out = human("expand", "ask A?", "expand $1", "drop", "expand $1")
    view = Workspace(question="Read $1 and $2", depth=1, pointers=True, bandwidth_left=7,
                     expanded=(Expansion(pointer="$2", content="two \x07"),))
    assert (await person.act(view)).action == Expand(pointer="$1")
    text = out.getvalue()
    assert "Expanded $2: two \\x07" in text and "Bandwidth: 7 characters left" in text
    assert "expand which pointer?" in text and "1 queued subquestion(s) not sent" in text
    person, out = human("expand $1", "answer no")
    assert (await person.act(Workspace(question="Q", depth=0))).action == Answer(answer="no")
    assert "pointer mode is off" in out.getvalue() and "expand $N" not in out.getvalue()
