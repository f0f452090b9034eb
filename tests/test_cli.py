"""The command line's error reporting (hch/cli/__init__.py): one line, documented status, for every error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import cli_in_process

from hch.cli import fail_with
from hch.errors import PolicySpecError, QuestionError


def reported(exc: Exception, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        fail_with(exc)
    return int(exited.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(("exc", "line"), [
    (ExceptionGroup("tasks", [QuestionError("the first"), QuestionError("the second")]),
     "hch: error: the first (and 1 more errors)\n"),
    (ExceptionGroup("outer", [ExceptionGroup("inner", [ValueError("x"), PolicySpecError("deep \x1b[31m")])]),
     "hch: error: deep \\x1b[31m (and 1 more errors)\n"),
    (ExceptionGroup("one", [FileNotFoundError(2, "No such file", "a\x07b")]), "hch: error: No such file: a\\x07b\n"),
    (QuestionError("plain"), "hch: error: plain\n"),
    (ExceptionGroup("bugs", [ValueError("v")]), None),
])
def test_errors_from_concurrent_tasks_are_reported_as_what_hch_raised(
    exc: Exception, line: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = reported(exc, capsys)
    assert code == 1 and err.count("\n") == 1
    if line is None:  # a group of bugs: still one line, saying how to see more
        assert err.startswith("hch: error: unexpected ExceptionGroup") and "HCH_DEBUG=1" in err
    else:
        assert err == line


HUGE = "9" * 5000
"""A number over the 4,300 digits Python converts to int: every place that reads numbers refuses it in one line."""


def _huge_files(tmp_path: Path) -> dict[str, str]:
    trace = {"format": "hch-trace", "schema_version": 1, "graph": {}, "nodes": [], "edges": [], "x": 0}
    files = {
        "trace.json": json.dumps(trace).replace('"x": 0', f'"x": {HUGE}'),
        "q.jsonl": f'{{"id": {HUGE}, "question": "What is the sum of 1, 2?"}}\n',
        "script.json": f'{{"rules": [{{"match": ".*", "depth": {HUGE}, "answer": "x"}}]}}',
        "script.yaml": f"rules:\n  - match: '.*'\n    depth: {HUGE}\n    answer: x\n",
        "depth.yaml": f"rules:\n  - match: '.*'\n    depth: '>={HUGE}'\n    answer: x\n",
        "preset.yaml": f"model: m\nmax_reasks: {HUGE}\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return files


@pytest.mark.parametrize("args", [
    ["show", "trace.json"], ["diff", "trace.json", "trace.json"], ["sweep", "q.jsonl", "-o", "s", "--no-plot"],
    ["ask", "--policy", "script:script.json", "1+1"], ["ask", "--policy", "script:script.yaml", "1+1"],
    ["ask", "--policy", "script:depth.yaml", "1+1"], ["ask", "--policy", "llm", "--preset", "preset.yaml", "1+1"],
    ["sweep", "q.jsonl", "-o", "s", "--depths", f"0-{HUGE}"], ["sweep", "q.jsonl", "-o", "s", "--votes", HUGE],
    ["ask", "--policy", f"vote({HUGE})", "1+1"], ["ask", "--policy", f"depth{HUGE}=expert,else=expert", "-q", "1+1"],
    ["ask", f"What is the sum of {HUGE}, 1?"],
])
def test_a_number_too_long_to_read_is_one_line_wherever_it_enters(
        args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    _huge_files(tmp_path)
    code, _, err = cli_in_process([*args, "--no-cache"] if args[0] in ("ask", "sweep") else args, capsys)
    if any(arg.startswith("depth9") for arg in args):
        assert code == 0  # a position no node is at: the else policy answers
    else:
        assert code != 0 and err.count("\n") == 1, err  # cli_in_process: never "unexpected ValueError"
