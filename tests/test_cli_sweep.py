from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import bad_files, cli_in_process, rejected, run_in, trace_data

from hch.cli.sweep import parse_numbers
from hch.study.plot import panels, render
from hch.study.rows import Row


def hch_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hch", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_task_sweep_writes_every_output_and_resumes(tmp_path: Path) -> None:
    args = ("sweep", "--task", "wildcard-search", "-n", "8", "--depths", "0-3", "--seed", "1",
            "--policy", "expert(noise=0.05, seed=1)", "--votes", "1,3")
    done = hch_cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "studies" / "wildcard-search-n8-seed1"
    assert "by depth" in done.stdout and "64 runs made, 0 resumed" in done.stdout
    for name in ("summary.csv", "buckets.csv", "sweep.json", "plot.png", "plot.svg", "runs.jsonl", "config.json"):
        assert (out / name).exists(), name
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["votes"], r["depth"]) for r in rows] == [(v, str(d)) for v in "13" for d in range(4)]
    assert len(list((out / "traces").rglob("*.json"))) == 64
    assert (tmp_path / ".hch" / "cache.sqlite").exists()
    again = hch_cli(*args, cwd=tmp_path)
    assert again.returncode == 0 and "0 runs made, 64 resumed · 0 policy calls" in again.stdout
    assert json.loads((out / "sweep.json").read_text())["config"]["policy"] == "expert(noise=0.05, seed=1)"


def test_a_vote_of_five_reports_five_times_the_invocations_everywhere(tmp_path: Path) -> None:
    spec = "expert(noise=0.05,seed=1)"
    done = hch_cli("sweep", "--task", "permutation-powering", "-n", "10", "--depths", "0-2", "--policy", spec,
                   "--votes", "1,5", "--no-cache", "--out", "o", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "o"
    # the printed table: variant, n, qs, acc, CI, acc*, guess, nodes, calls, inv, made, inv made, ...
    printed = {}
    for line in done.stdout.split("at n = ")[0].splitlines():
        cells = line.split()
        if cells and cells[0] in (spec, "vote:5"):
            printed[cells[0], int(cells[1])] = (float(cells[8]), float(cells[9]), int(cells[10]), int(cells[11]))
    csv_rows = {(r["variant"], int(r["depth"])): r for r in csv.DictReader((out / "summary.csv").open())}
    json_rows = [Row.model_validate(r) for r in json.loads((out / "sweep.json").read_text())["rows"]]
    cost = next(p for p in panels(json_rows, []) if p.key == "invocations")
    plotted = {s.label: dict(zip(s.x, s.y, strict=True)) for s in cost.series}
    for depth in range(3):
        calls, invocations, made, invocations_made = printed["vote:5", depth]
        assert invocations == pytest.approx(5 * calls, abs=0.1) and invocations_made == 5 * made
        row = csv_rows["vote:5", depth]
        assert float(row["invocations_mean"]) == pytest.approx(5 * float(row["calls_mean"]))
        assert int(row["invocations_made"]) == 5 * int(row["calls_made"])
        alone = float(csv_rows[spec, depth]["invocations_mean"])
        assert 4 < float(row["invocations_mean"]) / alone < 6  # about five times one copy's work
        assert plotted["vote:5"][depth] == pytest.approx(float(row["invocations_mean"]))
        assert plotted[spec][depth] == pytest.approx(alone)
    figure = render(panels(json_rows, []), "t")
    drawn = {line.get_label(): list(line.get_ydata()) for line in figure.axes[1].get_lines()}
    assert drawn["vote:5"] == pytest.approx([plotted["vote:5"][d] for d in range(3)])
    assert (out / "plot.png").exists()


def test_file_sweep_with_and_without_gold(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text(
        '{"id": "a", "question": "What is 2 * (3 + 4)?", "answer": "14.0", "grader": "numeric"}\n'
        '{"id": "b", "question": "What is the sum of 1, 2, 3?"}\n'
    )
    done = hch_cli("sweep", "q.jsonl", "--depths", "0,1", "--out", "o", "--no-cache", "--no-plot", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "o" / "summary.csv").open()))
    assert [(r["depth"], r["graded"], r["correct"]) for r in rows] == [("0", "1", "0"), ("1", "1", "1")]
    assert not (tmp_path / "o" / "plot.png").exists() and not (tmp_path / ".hch").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sweep",), "give either a questions file or --task NAME"),
        (("sweep", "--task", "nope"), "unknown task 'nope'"),
        (("sweep", "--task", "arithmetic", "--depths", "3-1"), "the range '3-1' is empty"),
        (("sweep", "--task", "arithmetic", "--votes", "0"), "vote counts must be 1 or more"),
        (("sweep", "missing.jsonl"), "no question file at missing.jsonl"),
        (("sweep", "bad.jsonl"), "bad.jsonl line 2: not valid JSON"),
        (("sweep", "odd.jsonl"), "question line-1: the offline expert cannot parse"),
        (("sweep", "--task", "arithmetic", "--policy", "vote:0"), "vote needs a number of copies"),
        (("sweep", "--task", "union-find", "--facts", "secret"), "Invalid value for '--facts'"),
        (("sweep", "--task", "arithmetic", "--facts", "hidden"), "facts hidden needs a task's facts"),
        (("sweep", "--task", "union-find", "--policy", "expert(early_guess, bogus)"), "unknown expert 'bogus'"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "bad.jsonl").write_text('{"question": "What is 1 + 1?"}\n{"question": \n')
    (tmp_path / "odd.jsonl").write_text('{"question": "Why is the sky blue?"}\n')
    done = hch_cli(*args, cwd=tmp_path)
    assert done.returncode != 0
    assert message in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_hidden_facts_sweep_records_the_mode_and_uses_the_hidden_required_depths(tmp_path: Path) -> None:
    args = ("sweep", "--task", "shortest-path", "-n", "4", "--depths", "1-3", "--facts", "hidden",
            "--policy", "expert(early_guess)", "--no-plot", "--no-cache")
    done = hch_cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "studies" / "shortest-path-n4-seed0-hidden"
    config = json.loads((out / "config.json").read_text())
    assert (config["facts"], config["policy"]) == ("hidden", "expert(early_guess)")
    assert config["fingerprints"]["1"].endswith("+early_guess")
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert {r["required_depth"] for r in records} >= {2, 3}  # shortest path: the path's length + 1
    assert all(r["correct"] for r in records if r["depth"] >= r["required_depth"])


def test_parse_numbers() -> None:
    assert parse_numbers("0-3,5", "depths", 0) == [0, 1, 2, 3, 5]
    assert parse_numbers("3", "depths", 0) == [3]


def test_llm_sweep_against_a_local_server_counts_tokens_and_resumes(tmp_path: Path) -> None:
    from hch.testing.openai_server import OpenAIServer, hch_responder

    tree: dict[str, list[str] | str] = {
        "What is 1+2+3+4?": ["What is 1+2?", "What is 3+4?"], "What is 1+2?": "3", "What is 3+4?": "7",
    }

    def combine(question: str, answers: list[str]) -> str:
        return str(sum(int(a) for a in answers)) if all(a.isdigit() for a in answers) else "?"

    (tmp_path / "q.jsonl").write_text(
        '{"id": "sum", "question": "What is 1+2+3+4?", "answer": "10"}\n{"id": "leaf", "question": "What is 1+2?"}\n'
    )
    with OpenAIServer(hch_responder(tree, combine), api_key="sk-test-key", models={"m"}) as server:
        args = ("sweep", "q.jsonl", "--depths", "0-1", "--policy", "llm", "--model", "m", "--base-url",
                server.base_url, "--price", "1,2", "--out", "o", "--no-plot")
        env_run = subprocess.run(
            [sys.executable, "-m", "hch", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
            env={**os.environ, "COLUMNS": "200", "OPENAI_API_KEY": "sk-test-key"},
        )
        # at depth 0 the scripted H keeps asking for the sum until its node fails: a failed run
        assert env_run.returncode == 4 and "1 of 4 runs failed" in env_run.stderr, env_run.stderr
        requests = len(server.requests)
        rerun = subprocess.run(
            [sys.executable, "-m", "hch", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
            env={**os.environ, "COLUMNS": "200", "OPENAI_API_KEY": "sk-test-key"},
        )
        assert rerun.returncode == 4 and len(server.requests) == requests
    rows = {r["depth"]: r for r in csv.DictReader((tmp_path / "o" / "summary.csv").open())}
    assert (rows["1"]["graded"], rows["1"]["correct"]) == ("1", "1")
    assert float(rows["1"]["tokens_mean"]) > 0 and float(rows["1"]["cost_mean"]) > 0
    assert "sk-test-key" not in "".join(p.read_text() for p in (tmp_path / "o").rglob("*.json*"))


# -- hostile files, names and numbers (issue 14, classes 2 and 3) -----------------------------------

HOSTILE_FILES = {
    "long.jsonl": (json.dumps({"question": "What is the sum of 1, 2? " + "x" * 20_001}) + "\n",
                   "long.jsonl line 1: question: String should have at most 20000 characters"),
    "latin1.jsonl": (b'{"question": "What is the sum of 1, 2? caf\xe9"}\n', "is not UTF-8 text: byte 0xe9 on line 1"),
    "surrogate.jsonl": ('{"question": "What is the sum of 1, 2?", "id": "\\udc80"}\n', "id: not valid text"),
    "nan.jsonl": ('{"question": "What is the sum of 1, 2?", "tolerance": NaN}\n', "tolerance"),
    "inf.jsonl": ('{"question": "What is the sum of 1, 2?", "tolerance": Infinity}\n', "tolerance"),
    "fifo.jsonl": (None, "is not a regular file (a FIFO)"),
    "/dev/zero": (None, "is not a regular file (a character device)"),
}


@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_a_hostile_question_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    from hch.cli import main

    content, message = HOSTILE_FILES[name]
    if name == "fifo.jsonl":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this system")
        os.mkfifo(tmp_path / name)
    elif content is not None:
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:  # a FIFO used to block here forever
        main(["sweep", name, "--depths", "0", "--no-plot", "--out", "s"])
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err.count("\n") == 1 and message in err, err
    assert "unexpected" not in err and not (tmp_path / "s").exists()


def test_rich_markup_in_the_output_path_does_not_break_resume(tmp_path: Path) -> None:
    args = ("sweep", "--task", "arithmetic", "-n", "2", "--depths", "0-1", "--no-plot", "--out", "s[/bold]x[red]")
    for _ in range(2):
        done = hch_cli(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert "0 runs made, 4 resumed" in done.stdout and "s[/bold]x[red]" in done.stderr


def test_an_empty_output_directory_is_refused(tmp_path: Path) -> None:
    done = hch_cli("sweep", "--task", "arithmetic", "-n", "2", "--depths", "0", "--out", "", cwd=tmp_path)
    assert done.returncode == 2 and "an empty path names no file" in done.stderr and done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
def test_the_command_line_starts_without_loading_matplotlib() -> None:
    # the plot module is imported only when a sweep writes its outputs: every `hch` start would pay for it
    done = subprocess.run([sys.executable, "-c", "import sys, hch.cli; print('matplotlib' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_a_sweep_with_independent_copies_records_them_and_resumes(tmp_path: Path) -> None:
    args = ("sweep", "--task", "permutation-powering", "-n", "4", "--depths", "0-2", "--seed", "2",
            "--policy", "expert(noise=0.2, seed=1, on=all)", "--votes", "1,3", "--copies", "independent", "--no-plot")
    done = hch_cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "studies" / "permutation-powering-n4-seed2"
    assert json.loads((out / "sweep.json").read_text())["config"]["copies"] == "independent"
    trace = trace_data(next((out / "traces").rglob("*.json")))
    assert trace["graph"]["copies"] == "independent"
    again = hch_cli(*args, cwd=tmp_path)
    assert again.returncode == 0 and "0 runs made, 24 resumed · 0 policy calls" in again.stdout
    merged = hch_cli(*args[:-3], "--no-plot", cwd=tmp_path)
    assert merged.returncode == 1 and "holds a different sweep" in merged.stderr
    assert merged.stderr.strip().splitlines()[-1].startswith("hch: error: ") and "Traceback" not in merged.stderr
def test_a_sweep_with_failed_runs_exits_4_with_a_count_after_writing_its_outputs(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text(
        '{"id": "a", "question": "What is 2 * (3 + 4)?", "answer": "14"}\n'
        '{"id": "b", "question": "What is 1 / 0?"}\n'
    )
    done = hch_cli("sweep", "q.jsonl", "--depths", "0,1", "--out", "o", "--no-cache", "--no-plot", cwd=tmp_path)
    assert done.returncode == 4
    assert done.stderr.strip().splitlines()[-1].startswith("hch: error: 2 of 4 runs failed")
    assert (tmp_path / "o" / "summary.csv").exists() and "by depth" in done.stdout
    fast = hch_cli("sweep", "q.jsonl", "--depths", "0,1", "--out", "f", "--no-cache", "--no-plot", "--fail-fast",
                   cwd=tmp_path)
    assert fast.returncode == 4, fast.stderr  # a failed run, not an error before the sweep (1)
    assert fast.stderr.strip().splitlines()[-1] == ("hch: error: the sweep stopped: node 0 ('What is 1 / 0?') failed: "
                                                    "division by zero; finished runs are kept in f: rerun the same "
                                                    "command to resume")
PER_CALL = 0.001  # dollars: every scripted reply reports 1000 prompt tokens, priced at $1 per million


def budget_server() -> Any:
    """A scripted H for `What is the sum of X, Y?` (asks for X and Y, then adds) reporting fixed usage."""
    from hch.testing.openai_server import OpenAIServer, Seen, Step, question_of, subanswers_of

    def respond(seen: Seen) -> Step:
        question = question_of(seen)
        numbers = [int(n) for n in re.findall(r"\d+", question)]
        answers = subanswers_of(seen)
        if len(numbers) == 1:
            step = Step.answer(str(numbers[0]))
        elif "You may not ask" in seen.last_user:
            step = Step.answer("0")  # a guess at depth 0
        elif answers:
            step = Step.answer(str(sum(int(a) for a in answers)))
        else:
            step = Step.ask(*(f"What is {n}?" for n in numbers))
        return dataclasses.replace(step, usage={"prompt_tokens": 1000, "completion_tokens": 0})

    return OpenAIServer(respond)


def llm_sweep(tmp_path: Path, server: Any, *extra: str) -> subprocess.CompletedProcess[str]:
    return hch_cli("sweep", "q.jsonl", "--depths", "0-1", "--policy", "llm", "--model", "m", "--base-url",
                   server.base_url, "--price", "1,1", "--out", "o", "--no-plot", "-j", "2", "--max-concurrency", "2",
                   *extra, cwd=tmp_path)


def spent_cost(server: Any) -> float:
    return len(server.requests) * PER_CALL


def test_max_cost_bounds_the_whole_sweep_and_a_resumed_sweep_spends_only_what_is_left(tmp_path: Path) -> None:
    # 8 questions x 2 depths: 8 runs of 1 call (depth 0) and 8 of up to 4 calls (depth 1); ~$0.04 unbounded
    (tmp_path / "q.jsonl").write_text("".join(
        json.dumps({"id": f"q{i}", "question": f"What is the sum of {i}, {i + 10}?", "answer": str(2 * i + 10)}) + "\n"
        for i in range(1, 9)
    ))
    # -j 2: two questions at a time, each asking at most two subquestions at once, so at most four calls
    # can have started (sent, or waiting for one of the two connection slots) when the budget runs out
    in_flight = 4 * PER_CALL
    with budget_server() as server:
        first = llm_sweep(tmp_path, server, "--max-cost", "0.01")
        assert first.returncode == 5, first.stderr  # stopped by a limit: a Makefile must not take it as complete
        assert 0.01 <= spent_cost(server) <= 0.01 + in_flight
        assert "the sweep's budget is spent" in first.stderr and "runs not made" in first.stderr
        records = [json.loads(line) for line in (tmp_path / "o" / "runs.jsonl").read_text().splitlines()]
        # what the records say was spent is what the server billed, unfinished runs included
        assert sum(r["cost_spent"] for r in records) == pytest.approx(spent_cost(server))
        finished = [r for r in records if r["finished"]]
        assert len(finished) < 16
        totals = json.loads((tmp_path / "o" / "sweep.json").read_text())["totals"]
        assert totals["budget"]["cost"] == pytest.approx(spent_cost(server)) and totals["budget"]["cost_before"] == 0

        again = llm_sweep(tmp_path, server, "--max-cost", "0.01")  # nothing left: no request at all
        assert again.returncode == 5, again.stderr
        assert spent_cost(server) <= 0.01 + in_flight and "0 runs made" in again.stdout
        before = spent_cost(server)

        # A raised budget, two calls above what was spent: only what is left is spent, and the status says
        # whether that finished the sweep (how many runs the cached calls of cut-short runs let finish
        # depends on how far those runs got before the budget stopped them, which varies with load).
        raised = before + 2 * PER_CALL
        more = llm_sweep(tmp_path, server, "--max-cost", f"{raised:.6f}")
        assert before < spent_cost(server) <= raised + in_flight
        records = [json.loads(line) for line in (tmp_path / "o" / "runs.jsonl").read_text().splitlines()]
        complete = len({(r["id"], r["depth"]) for r in records if r["finished"]}) == 16
        assert more.returncode == (0 if complete else 5), more.stderr
        totals = json.loads((tmp_path / "o" / "sweep.json").read_text())["totals"]
        assert totals["budget"]["cost_before"] == pytest.approx(before)
        assert totals["budget"]["cost"] == pytest.approx(spent_cost(server))
        rest = llm_sweep(tmp_path, server, "--max-cost", "1")  # enough for every run left: a complete sweep
        assert rest.returncode == 0 and "budget is spent" not in rest.stderr, rest.stderr
        assert len(server.requests) == len({json.dumps(s.body["messages"]) for s in server.requests})  # no call twice


def test_max_total_tokens_bounds_the_sweep_and_an_unpriced_model_is_warned_about(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text("".join(
        json.dumps({"id": f"q{i}", "question": f"What is the sum of {i}, {i + 10}?"}) + "\n" for i in range(1, 9)
    ))
    with budget_server() as server:
        done = hch_cli("sweep", "q.jsonl", "--depths", "0-1", "--policy", "llm", "--model", "m", "--base-url",
                       server.base_url, "--out", "o", "--no-plot", "-j", "1", "--max-concurrency", "1",
                       "--max-total-tokens", "5000", cwd=tmp_path)
        assert done.returncode == 5, done.stderr
        assert 5 <= len(server.requests) <= 7  # 1000 tokens a call; a root's two subquestions may be in flight
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "model 'm' has no price" in warnings[0]


def test_estimate_runs_only_the_pilot_and_prints_calls_tokens_and_cost(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text("".join(
        json.dumps({"id": f"q{i}", "question": f"What is the sum of {i}, {i + 10}?"}) + "\n" for i in range(1, 7)
    ))
    with budget_server() as server:
        done = llm_sweep(tmp_path, server, "--pilot", "2", "--max-cost", "1")
        assert done.returncode == 0, done.stderr
        # the pilot: questions 1 and 2 at depth 1 (4 calls each) and at depth 0 (1 call each)
        records = [json.loads(line) for line in (tmp_path / "o" / "runs.jsonl").read_text().splitlines()]
        assert sorted((r["id"], r["depth"]) for r in records) == [("q1", 0), ("q1", 1), ("q2", 0), ("q2", 1)]
        requests = len(server.requests)
        again = llm_sweep(tmp_path, server, "--estimate")  # from the runs in --out alone: no request
        assert again.returncode == 0 and len(server.requests) == requests
    assert not (tmp_path / "o" / "summary.csv").exists()
    for output in (done.stdout, again.stdout):
        assert "estimate of the runs left" in output
        rows = {line.split()[1]: line.split() for line in output.splitlines() if re.match(r"\s*1\s+[01]\s+4\s", line)}
        # votes n runs-left basis calls/run tokens/call $/call calls tokens cost
        assert rows["0"][2:] == ["4", "2", "1.0", "1,000.0", "$0.0010", "4", "4,000", "$0.0040"]
        assert rows["1"][2:] == ["4", "2", "4.0", "1,000.0", "$0.0010", "16", "16,000", "$0.0160"]
        assert "total: 8 runs left · ~20 calls · ~20,000 tokens · ~$0.0200" in output
        assert "upper bound" in output and "m: $1 in, $1 out" in output
    assert "budget: $0.9900 of $1.0000 left; the estimate fits" in done.stdout


def test_estimate_without_a_basis_says_to_run_a_pilot_and_warns_about_a_missing_price(tmp_path: Path) -> None:
    done = hch_cli("sweep", "--task", "arithmetic", "-n", "3", "--depths", "0-1", "--estimate", "--out", "o",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "run a pilot with --pilot N" in done.stdout and not (tmp_path / "o" / "runs.jsonl").exists()
    with budget_server() as server:
        (tmp_path / "q.jsonl").write_text('{"question": "What is the sum of 1, 2?"}\n')
        unpriced = hch_cli("sweep", "q.jsonl", "--policy", "llm", "--model", "m", "--base-url", server.base_url,
                           "--estimate", "--out", "p", cwd=tmp_path)
        assert unpriced.returncode == 0 and not server.requests
    assert unpriced.stderr.count("\n") == 1 and "model 'm' has no price" in unpriced.stderr


@pytest.mark.parametrize(("text", "what"), [("0-99999999999", "depths"), ("0-500,600-1200", "depths"),
                                            ("1-1000000", "vote counts")])
def test_a_list_of_depths_or_votes_too_long_is_refused_before_it_is_made(text: str, what: str) -> None:
    import click

    with pytest.raises(click.BadParameter, match="lists more than 1000"):
        parse_numbers(text, what, 0)
    assert parse_numbers("0-999", "depths", 0) == list(range(1000))


@pytest.mark.parametrize("text", ["99999999999999999999", "0,10001", "10001"])
def test_a_depth_too_large_is_refused_before_the_sweep_prepares_it(text: str) -> None:
    import click

    with pytest.raises(click.BadParameter, match="must be at most 10000"):
        parse_numbers(text, "depths", 0)
    with pytest.raises(click.BadParameter, match="must be at most 1000,"):  # a vote's own bound, said at once
        parse_numbers(text.replace("10001", "1001"), "vote counts", 1, 1000)


def test_a_sweep_against_a_dead_server_stops_with_one_line_and_exit_status_4(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port where nothing listens: every connection is refused
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    (tmp_path / "q.jsonl").write_text(
        '{"id": "a", "question": "What is 1+2?"}\n{"id": "b", "question": "What is 3+4?"}\n'
    )
    (tmp_path / "fast.yaml").write_text(
        "system: s\ntemplate: 'Your question: ${question}'\n"
        "retry: {max_attempts: 6, initial_wait: 0.01, max_wait: 0.05, jitter: 0.01}\n"
    )
    done = hch_cli("sweep", "q.jsonl", "--depths", "0-1", "--policy", "llm", "--model", "m", "--base-url", url,
                   "--preset", "fast.yaml", "--out", "o", "--no-plot", cwd=tmp_path)
    assert done.returncode == 4 and "Traceback" not in done.stderr  # a failed sweep, not an error before it
    last = done.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"hch: error: the sweep stopped: {url} is unreachable: 3 requests in a row got no reply")
    assert last.endswith("finished runs are kept in o: rerun the same command to resume")


# -- the bad-input campaign, as a class (issue 14) ---------------------------------------------------

QUESTIONS = '{"id": "a", "question": "What is the sum of 1, 2?", "answer": "3"}\n'


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "dev-zero", "empty", "png", "not-utf8",
                                  "other-json", "json-list", "escape-name", "huge"])
def test_a_question_file_that_is_none_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = str(bad_files(tmp_path)[kind])
    rejected(["sweep", bad, "--depths", "0", "--no-plot", "--no-cache", "--out", "o"], capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
@pytest.mark.parametrize("name", ["config.json", "runs.jsonl"])
@pytest.mark.parametrize("estimate", [True, False])
def test_a_fifo_among_a_sweeps_own_files_is_refused_not_waited_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, estimate: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text(QUESTIONS)
    (tmp_path / "o").mkdir()
    os.mkfifo(tmp_path / "o" / name)  # every reader of the out folder's files (the estimate's too) refuses it
    code, _, err = cli_in_process(["sweep", "q.jsonl", "--depths", "0", "--no-plot", "--no-cache", "--out", "o",
                                   *(["--estimate"] if estimate else [])], capsys)
    assert code == 1 and err.splitlines()[-1].endswith("not a regular file (a FIFO); give a file")  # (after a bar)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "file", "under-a-file", "uncreatable"])
def test_an_output_directory_that_cannot_be_one_is_refused_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text(QUESTIONS)
    out = {"fifo": str(bad_files(tmp_path)["fifo"]), "dev-zero": "/dev/zero", "file": "q.jsonl",
           "under-a-file": "q.jsonl/sub", "uncreatable": "/proc/hch-nope/out"}[kind]
    err = rejected(["sweep", "q.jsonl", "--depths", "0", "--no-plot", "--no-cache", "--out", out], capsys)
    if kind == "uncreatable":  # the folder cannot be made: the system's reason, before any run or progress bar
        assert "/proc/hch-nope" in err
    else:
        assert ("not a directory" in err or "is a file" in err) and "--out" in err


@pytest.mark.parametrize(("option", "values"), [
    ("--depths", ["nan", "-1", "0-", "5-1", ",", "0,,1", "\x1b[31m", "0-100000000"]),
    ("--votes", ["nan", "0", "1,", "100000000", "\u202e"]),
    ("--questions", ["0", "-1", "99999999999999999999", "inf"]),
    ("--grader", ["\x07", ""]), ("--task", ["\x1b]0;x\x07", "", "nope"]), ("--concurrency", ["0", "nan"]),
])
def test_bad_sweep_options_are_one_line_with_the_value_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], option: str,
    values: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text(QUESTIONS)
    source = ["--task", "arithmetic"] if option == "--questions" else ["q.jsonl"]
    for value in values:
        args = ["sweep", *source, "--no-plot", "--no-cache", "--out", "o", option, value]
        if option == "--task":
            args = ["sweep", "--task", value, "--no-plot", "--no-cache", "--out", "o"]
        rejected(args, capsys)


@pytest.mark.parametrize(("args", "message"), [
    (("--budgets", "10,,20"), "is not a list of budgets"),
    (("--budgets", "a"), "is not a list of budgets"),
    (("--budgets", "nan"), "is not a list of budgets"),
    (("--budgets", "-5"), "is not a list of budgets"),
    (("--budgets", "0,10"), "budgets must be 1 or more"),
    (("--budgets", "20-10"), "is empty"),
    (("--budgets", "10001"), "at most 10000"),
    (("--budgets", "1-2000"), "more than 1000 budgets"),
    (("--budget", "0"), "--budget"),
    (("--budget", "nan"), "--budget"),
    (("--budget", "5", "--budgets", "5,10"), "not both"),
    (("--budgets", "5,10", "--depths", "0-3"), "at most one depth"),
])
def test_bad_budgets_are_one_line_and_exit_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...], message: str,
) -> None:
    code, _, err = run_in(["sweep", "--task", "arithmetic", "-n", "2", *args], tmp_path, monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "studies").exists()


def test_a_sweep_over_budget_reports_by_budget_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["sweep", "--task", "arithmetic", "-n", "4", "--seed", "1", "--out", "o", "--no-plot"]
    code, out, err = run_in([*base, "--budgets", "3,10,40"], tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert "by budget" in out and "12 runs made, 0 resumed" in out
    rows = list(csv.DictReader((tmp_path / "o" / "summary.csv").open()))
    assert [(r["budget"], r["depth"]) for r in rows] == [("3", "3"), ("10", "10"), ("40", "40")]
    accuracy = [float(r["accuracy"]) for r in rows]
    assert accuracy == sorted(accuracy) and accuracy[-1] == 1.0  # more calls never hurt the honest expert here
    assert all(float(r["calls_mean"]) <= int(r["budget"]) for r in rows)
    records = [json.loads(line) for line in (tmp_path / "o" / "runs.jsonl").read_text().splitlines()]
    assert sorted({r["budget"] for r in records}) == [3, 10, 40]
    assert all(f"budget-{r['budget']}-depth-{r['depth']}.json" in r["trace"] for r in records)
    code, out, err = run_in([*base, "--budgets", "3,10,40,100"], tmp_path, monkeypatch, capsys)
    assert code == 0 and "4 runs made, 12 resumed" in out, err
    code, out, err = run_in(base, tmp_path, monkeypatch, capsys)  # a sweep over depth: another sweep
    assert code == 1 and "holds a different sweep" in err
    code, out, err = run_in([*base, "--budgets", "10", "--depths", "2", "--out", "p"], tmp_path, monkeypatch,
                                capsys)
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "p" / "summary.csv").open()))
    assert [(r["budget"], r["depth"]) for r in rows] == [("10", "2")]


def test_an_estimate_of_a_sweep_over_budget_is_by_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_in(["sweep", "--task", "arithmetic", "-n", "4", "--budgets", "3,10", "--depths", "5",
                                 "--pilot", "2", "--out", "o"], tmp_path, monkeypatch, capsys)
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.split()[:1] == ["votes"]).split()
    assert header[:2] == ["votes", "budget"] and "at the same budget" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == ["1"]]
    assert [(r[1], r[2]) for r in rows] == [("3", "2"), ("10", "2")]  # per budget: 2 runs left after the pilot
