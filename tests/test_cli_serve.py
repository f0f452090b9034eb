"""`hch serve`'s command line: bad input is one line on stderr and a documented exit status, before anything
is served. (The server itself, with participants in a browser, is tested in tests/test_serve_app.py.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hch.cli import main
from hch.cli.serve import check_public_url, locked
from hch.serve.policy import active


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    return int(exited.value.code or 0), err


@pytest.mark.parametrize(("argv", "status", "says"), [
    (["--public-url", "ftp://example.org"], 2, "is not a base URL"),
    (["--public-url", "http://user:pw@example.org"], 2, "credentials"),
    (["--port", "70000"], 2, "70000"),
    (["--barrier", "leaf"], 2, "'leaf' is not one of"),
    (["--ask", ""], 1, "the question is empty"),
    (["--ask", "Q", "--policy", "nope"], 1, "unknown policy 'nope'"),
    (["--ask", "Q", "--policy", "root=web"], 1, "else="),
    (["--sweep", "missing.jsonl"], 1, "missing.jsonl"),
    (["--task", "arithmetic", "--depths", "x"], 2, "is not a list of depths"),
    (["--sweep", "q.jsonl", "--task", "arithmetic"], 2, "not both"),
    (["--ask", "Q", "--budget", "0"], 2, "--budget"),
    (["--task", "arithmetic", "--budget", "5", "--budgets", "5,10"], 2, "not both"),
    (["--task", "arithmetic", "--budgets", "5", "--depths", "1-2"], 2, "at most one depth"),
    (["--time-budget", "nan"], 2, "not a finite number"),
    (["--time-budget", "inf"], 2, "not a finite number"),
    (["--away", "-inf"], 2, "--away"),
])
def test_bad_input_is_one_line_and_a_documented_status(
        argv: list[str], status: int, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text('{"question": "Q"}\n')
    code, err = run(["serve", "--state", "st", "--port", "0", *argv], capsys)
    assert code == status
    assert err.count("\n") == 1 and err.startswith("hch: error: ") and says in err, err
    assert "Traceback" not in err
    with pytest.raises(Exception, match="hch serve"):
        active()  # nothing left switched on in this process


def test_a_state_directory_in_use_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with locked(tmp_path / "st"):
        code, err = run(["serve", "--state", str(tmp_path / "st"), "--port", "0"], capsys)
    assert code == 1 and "in use by another hch serve" in err and err.count("\n") == 1
    (tmp_path / "file").write_text("")
    code, err = run(["serve", "--state", str(tmp_path / "file"), "--port", "0"], capsys)
    assert code == 2 and "is a file" in err and err.count("\n") == 1


def test_a_foreign_state_database_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "serve.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    code, err = run(["serve", "--state", str(tmp_path / "st"), "--port", "0"], capsys)
    assert code == 1 and "serve.sqlite" in err and err.count("\n") == 1


def test_an_address_in_use_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, err = run(["serve", "--state", str(tmp_path / "st"), "--port", str(port)], capsys)
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err and err.count("\n") == 1


def test_the_web_policy_outside_hch_serve_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["ask", "Q", "--policy", "root=web,else=expert", "--no-cache", "--trace", str(tmp_path / "t.json")],
                    capsys)
    assert code == 1 and "hch serve" in err and err.count("\n") == 1


def test_public_urls_are_bases() -> None:
    assert check_public_url("https://example.org/hch/") == "https://example.org/hch"
    assert check_public_url(None) is None


def test_a_sweep_over_budget_is_made_as_hch_sweep_makes_it() -> None:
    from hch.cli.serve import sweep_job
    from hch.limits import Limits

    class Jobs:
        def sweep(self, items: object, config: object) -> object:
            return config

    defaults = Limits()
    flags = {"seed": None, "max_asks": defaults.max_asks_per_step, "max_steps": defaults.max_steps_per_node,
             "max_nodes": defaults.max_nodes, "node_timeout": None, "run_timeout": None, "max_total_tokens": None,
             "max_cost": None}
    made = sweep_job(Jobs(), None, "arithmetic", 2, "1", "web", "shown", "merged", 4, flags, (None, "20,5", False))
    assert made.budgets == [5, 20] and made.depths == []  # depth unbounded unless --depths names one
    made = sweep_job(Jobs(), None, "arithmetic", 2, "2", "web", "shown", "merged", 4, flags, (7, None, True))
    assert made.budgets == [7] and made.depths == [2]
    assert sweep_job(Jobs(), None, "arithmetic", 2, "1-2", "web", "shown", "merged", 4, flags).budgets is None
