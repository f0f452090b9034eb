from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import trace_data

import hch

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def hch_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hch", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_ask_prints_answer_tree_summary_and_trace_path(tmp_path: Path) -> None:
    done = hch_cli("ask", SUM, "--depth", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "31"
    assert any("n=2 What is the sum of 3, 1, 4, 1? → 9" in line for line in lines)
    assert any("7 nodes · 10 policy calls · 0 cache hits · deepest level 2" in line for line in lines)
    trace_line = lines[-1]
    assert trace_line.startswith("trace: traces/")
    trace = hch.load_trace(tmp_path / trace_line.removeprefix("trace: "))
    assert trace.meta["answer"] == "31"
    assert (tmp_path / ".hch" / "cache.sqlite").exists()


def test_json_output_is_one_object_and_a_rerun_is_served_from_the_cache(tmp_path: Path) -> None:
    first = json.loads(hch_cli("ask", SUM, "--json", cwd=tmp_path).stdout)
    second = json.loads(hch_cli("ask", SUM, "--json", cwd=tmp_path).stdout)
    assert first["answer"] == second["answer"] == "31"
    assert first["summary"]["policy_calls"] == 10
    assert (second["summary"]["policy_calls"], second["summary"]["call_cache_hits"]) == (0, 10)
    assert Path(tmp_path / first["trace"]).exists() and first["trace"] != second["trace"]


def test_quiet_prints_only_the_answer_and_no_cache_writes_no_cache(tmp_path: Path) -> None:
    done = hch_cli("ask", "What is (3 + 4) * 2?", "-q", "--no-cache", "--trace", "out.json", cwd=tmp_path)
    assert done.stdout == "14\n"
    assert (tmp_path / "out.json").exists()
    assert not (tmp_path / ".hch").exists()


def test_guesses_are_marked_in_the_tree(tmp_path: Path) -> None:
    done = hch_cli("ask", SUM, "--depth", "1", cwd=tmp_path)
    assert "[guess]" in done.stdout
    # the honest expert splits the list even at depth 1; both halves are guessed at depth 0
    assert "3 nodes · 4 policy calls · 0 cache hits · deepest level 1" in done.stdout
    assert "3 guesses, 0 errors" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", ""], "the question is empty"),
        (["ask", "x" * 30_000], "at most 20000"),
        (["ask", SUM, "--depth", "-1"], "--depth"),
        (["ask", SUM, "--policy", "nonsense"], "unknown policy 'nonsense'"),
        (["ask", "Why is the sky blue?"], "cannot parse"),
        (["ask", SUM, "--bogus"], "No such option"),
        (["ask", SUM, "--max-nodes", "0"], "--max-nodes"),
        (["ask", SUM, "--context", "@missing.txt"], "no context file at missing.txt"),
        (["ask", SUM, "--facts", "maybe"], "Invalid value for '--facts'"),
        (["ask", SUM, "--facts", "hidden"], "facts hidden needs a task's facts"),
    ],
)
def test_bad_input_gives_one_line_and_a_nonzero_exit(tmp_path: Path, args: list[str], message: str) -> None:
    done = hch_cli(*args, cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_hidden_facts_show_the_environments_answers_in_the_tree(tmp_path: Path) -> None:
    from hch.tasks import get_task

    item = next(i for i in get_task("union-find").generate(10, seed=1, facts="hidden") if i.required_depth == 2)
    (tmp_path / "facts.txt").write_text(item.context)
    done = hch_cli("ask", item.question, "--depth", "2", "--context", "@facts.txt", "--facts", "hidden",
                   "--trace", "t.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == item.answer
    assert "What are the neighbours of" in done.stdout and "[environment]" in done.stdout
    assert trace_data(tmp_path / "t.json")["graph"]["facts"] == "hidden"
    shown = hch_cli("show", "t.json", cwd=tmp_path)
    assert shown.returncode == 0 and "[environment]" in shown.stdout
    node = next(n["id"] for n in trace_data(tmp_path / "t.json")["nodes"] if n.get("oracle"))
    detail = hch_cli("show", "t.json", "--node", str(node), cwd=tmp_path)
    assert "policy environment" in detail.stdout and "answered by the task's environment" in detail.stdout


SLOW_RUN = textwrap.dedent(
    """
    import sys, anyio
    from hch.cli import main
    from hch.policies.spec import register
    from hch.workspace import Answer, Ask

    class Slow:
        fingerprint = "slow"
        async def act(self, ws):
            if ws.question == "root":
                return Ask(questions=["a", "b"]) if not ws.steps else Answer(answer="done")
            if ws.question == "b":
                print("waiting", flush=True)
                await anyio.sleep_forever()
            return Answer(answer=ws.question)

    register("slow")(lambda argument, options: Slow())
    main(sys.argv[1:])
    """
)


def test_ctrl_c_stops_cleanly_and_writes_the_trace_of_what_completed(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(SLOW_RUN)
    process = subprocess.Popen(
        [sys.executable, str(script), "ask", "root", "--policy", "slow", "--trace", "t.json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "waiting\n"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert stderr.strip() == "hch: interrupted; the trace of what completed is in t.json"
    trace = hch.load_trace(tmp_path / "t.json")
    statuses = {d["question"]: d["status"] for _, d in trace.workspaces()}
    assert statuses == {"root": "interrupted", "a": "ok", "b": "interrupted"}


# -- bad values where they enter: one line, exit 2 or 1, nothing written (issue 14, classes 2 and 3) --

FLOAT_OPTIONS = ["--node-timeout", "--run-timeout", "--max-cost", "--temperature", "--request-timeout"]


def in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from hch.cli import main

    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("hch: error: "), (args, out, err)
    assert "Traceback" not in err and "unexpected" not in err
    return int(exited.value.code or 0), err


@pytest.mark.parametrize("option", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_every_float_option_refuses_nan_and_infinities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = in_process(["ask", SUM, "--no-cache", f"{option}={value}"], capsys)
    assert code == 2 and option in err
    assert not (tmp_path / "traces").exists()


@pytest.mark.parametrize("args", [["--trace", ""], ["--trace", "  "], ["--cache", ""], ["--context", "@"]])
def test_an_empty_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = in_process(["ask", SUM, *args], capsys)
    assert code != 0 and ("empty path" in err or "is a directory" in err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/urandom"])
def test_a_special_file_as_context_is_refused_without_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], special: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if special == "fifo":
        os.mkfifo(tmp_path / "fifo")
    code, err = in_process(["ask", SUM, "--no-cache", "--context", f"@{special}"], capsys)
    assert code == 2 and "not a regular file" in err


def test_a_question_with_bytes_that_are_not_utf8_is_one_line_and_nothing_is_lost(tmp_path: Path) -> None:
    question = b"What is the sum of 1, 2? caf\xe9"
    done = subprocess.run([sys.executable, "-m", "hch", "ask", question, "--trace", "t.json"], cwd=tmp_path,
                          capture_output=True, timeout=60)
    assert done.returncode == 1 and done.stderr.count(b"\n") == 1, done.stderr
    assert b"the question is not valid text: character 29 is the byte 0xe9, which is not UTF-8" in done.stderr


def test_copies_independent_is_recorded_and_invocations_show_when_they_differ_from_calls(tmp_path: Path) -> None:
    done = hch_cli("ask", SUM, "--depth", "3", "--copies", "independent", "--policy", "vote(3, expert)",
                   "--no-cache", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert any("10 policy calls (30 invocations)" in line for line in done.stdout.splitlines())
    trace = hch.load_trace(tmp_path / done.stdout.splitlines()[-1].removeprefix("trace: "))
    assert trace.meta["copies"] == "independent"
    bad = hch_cli("ask", SUM, "--copies", "shared", cwd=tmp_path)
    assert bad.returncode == 2 and "Invalid value for '--copies'" in bad.stderr
def test_six_parallel_runs_of_one_question_write_six_traces_each_of_its_own_run(tmp_path: Path) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "hch", "ask", SUM, "--json", "--no-cache", "--context", f"run {i}"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(6)
    ]
    paths = {}
    for i, process in enumerate(processes):
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        paths[i] = json.loads(stdout)["trace"]
    assert len(set(paths.values())) == 6
    for i, path in paths.items():
        assert hch.load_trace(tmp_path / path).meta["context"] == f"run {i}"
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == sorted(Path(p).name for p in paths.values())


@pytest.mark.parametrize(("name", "message"), [("x.journal.jsonl", "may not end in .journal.jsonl"),
                                             ("-", "cannot go to stdout")])
def test_a_journal_name_or_dash_as_trace_path_is_a_one_line_error(tmp_path: Path, name: str, message: str) -> None:
    done = hch_cli("ask", SUM, "--trace", name, "--no-cache", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_failed_root_exits_4_with_the_error_on_stderr_never_as_the_answer(tmp_path: Path) -> None:
    done = hch_cli("ask", "What is 1 / 0?", "--depth", "1", cwd=tmp_path)
    assert done.returncode == 4 and done.stdout == ""
    assert done.stderr.splitlines()[-1].startswith("hch: error: the run failed: division by zero (trace: traces/")
    quiet = hch_cli("ask", "What is 1 / 0?", "--depth", "1", "-q", cwd=tmp_path)
    assert quiet.returncode == 4 and quiet.stdout == "" and quiet.stderr.count("\n") == 1
    as_json = hch_cli("ask", "What is 1 / 0?", "--depth", "1", "--json", cwd=tmp_path)
    assert as_json.returncode == 4 and as_json.stderr == ""
    record = json.loads(as_json.stdout)
    assert (record["answer"], record["status"], record["error"], record["exit_status"]) == (
        None, "error", "division by zero", 4)
    assert hch.load_trace(tmp_path / record["trace"]).meta["status"] == "error"


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["--depth", "3"], 0),
        (["--depth", "1"], 3),  # the root guesses
        (["--depth", "3", "--max-nodes", "2"], 3),  # the node budget forced a guess
        (["--depth", "3", "--max-total-tokens", "0"], 5),
        (["--depth", "3", "--max-cost", "0"], 5),
    ],
)
def test_the_exit_status_says_how_the_run_ended(tmp_path: Path, args: list[str], status: int) -> None:
    done = hch_cli("ask", SUM, "--no-cache", "--json", *args, cwd=tmp_path)
    assert done.returncode == status, done.stderr
    assert json.loads(done.stdout)["exit_status"] == status
    assert (json.loads(done.stdout)["answer"] is None) == (status == 5)


def test_a_run_timeout_that_fires_exits_5_and_fail_fast_exits_4(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(SLOW_RUN)
    timed_out = subprocess.run(
        [sys.executable, str(script), "ask", "root", "--policy", "slow", "--run-timeout", "0.2", "--no-cache", "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert timed_out.returncode == 5 and timed_out.stdout == "waiting\n"  # the policy's print, no answer
    assert "stopped by a limit: run timeout reached" in timed_out.stderr
    failed = hch_cli("ask", "What is (1 / 0) + 2?", "--fail-fast", "--no-cache", cwd=tmp_path)
    assert failed.returncode == 4 and failed.stdout == "" and failed.stderr.count("\n") == 1
    assert "failed: division by zero" in failed.stderr


def test_on_a_terminal_progress_shows_live_on_stderr_and_never_on_stdout(tmp_path: Path) -> None:
    import pexpect

    script = tmp_path / "slow.py"
    script.write_text(SLOW_RUN)
    # stderr is the terminal, stdout a file: the run blocks in b's call until Ctrl-C
    child = pexpect.spawn(
        "/bin/sh", ["-c", f"exec {sys.executable} {script} ask root --policy slow --no-cache --trace t.json > out.txt"],
        cwd=str(tmp_path), encoding="utf-8", dimensions=(24, 200), timeout=60,
    )
    child.expect(r"3 nodes \(1 done\) · 1 call in flight · 3 calls made")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert (tmp_path / "out.txt").read_text() == "waiting\n"  # the policy's own print; no progress


def test_progress_is_not_shown_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    done = hch_cli("ask", SUM, "--depth", "3", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""


# -- the bad-input campaign, as a class (issue 14) ---------------------------------------------------

from helpers import bad_files, cli_in_process, rejected, run_in  # noqa: E402

from hch.cli.render import plain  # noqa: E402

KINDS = ["missing", "directory", "fifo", "dev-zero", "empty", "png", "not-utf8", "escape-name", "huge"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_file_option_refuses_every_kind_of_bad_file_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = str(bad_files(tmp_path)[kind])
    cases = [["--context", f"@{bad}"]] if kind != "empty" else []  # an empty context is a context
    cases += [["--policy", f"script:{bad}"],
             ["--policy", "llm", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--preset", bad]]
    if kind not in ("missing", "empty", "escape-name", "fifo", "dev-zero", "huge"):  # those make a new cache
        cases.append(["--cache", bad])
    for extra in cases:
        args = ["ask", SUM, *([] if extra[0] == "--cache" else ["--no-cache"]), *extra]
        rejected(args, capsys)
    assert not (tmp_path / "traces").exists()


@pytest.mark.parametrize("value", ["\x1b[31mred", "bel\x07", "rtl\u202e", "c1\x9b", "[bold]x[/]", "\udcff"])
def test_echoed_values_are_escaped_in_every_rejection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for extra in (["--policy", value], ["--facts", value], ["--copies", value], ["--max-asks", value],
                  ["--context", f"@{value}"], ["--policy", "llm", "--model", "m", "--base-url", value]):
        rejected(["ask", SUM, "--no-cache", *extra], capsys)
    rejected(["ask", f"What is {value}?", "--no-cache"], capsys)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_nothing_reads_as_trace_is_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkfifo("fifo")
    err = rejected(["ask", SUM, "--no-cache", "--trace", "fifo"], capsys)
    assert "nothing is reading this FIFO" in err and sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]


@pytest.mark.parametrize("name", ["out\x1b]0;pwn\x07.json", "rtl\u202eout.json", "c1\x9b.json"])
def test_the_trace_path_printed_is_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli_in_process(["ask", SUM, "--no-cache", "--trace", name], capsys)
    assert code == 0 and f"trace: {plain(name)}" in out and (tmp_path / name).is_file()


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "1e3", "2.5", "", "100001", str(10**30)])
def test_a_bad_budget_is_one_line_and_exit_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    code, out, err = run_in(["ask", SUM, "--budget", bad], tmp_path, monkeypatch, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and "--budget" in err, err
    assert not (tmp_path / "traces").exists()


def test_a_budgeted_ask_leaves_depth_unbounded_unless_depth_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_in(["ask", SUM, "--budget", "10", "--json", "--no-cache"], tmp_path, monkeypatch, capsys)
    found = json.loads(out)
    assert (code, found["answer"], found["summary"]["policy_calls"]) == (0, "31", 10)
    trace = hch.load_trace(tmp_path / found["trace"])
    assert (trace.meta["budget"], trace.meta["depth"], trace.graph.nodes[trace.root]["spent"]) == (10, 10, 10)
    code, out, _ = run_in(["ask", SUM, "--budget", "9", "-q", "--no-cache"], tmp_path, monkeypatch, capsys)
    assert (code, out) == (3, "32\n")  # 9 calls cannot pay for the whole tree: the halves guess
    code, out, _ = run_in(["ask", SUM, "--budget", "12", "--no-cache"], tmp_path, monkeypatch, capsys)
    assert code == 0 and f"#0 n=12 calls=10/12 {SUM} → 31" in out and "n=11 calls=4/5 " in out
    code, out, _ = run_in(["ask", SUM, "--budget", "100", "--depth", "1", "--json", "--no-cache"],
                                  tmp_path, monkeypatch, capsys)
    found = json.loads(out)
    assert (code, found["status"], hch.load_trace(tmp_path / found["trace"]).meta["depth"]) == (3, "guess", 1)
