"""The command line's error reporting (hch/cli/__init__.py): one line, documented status, for every error."""

from __future__ import annotations

import pytest

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
