"""`hch ida` from the command line: outputs, resuming, one-line errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import rejected


def hch_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hch", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


ARGS = ("ida", "--task", "permutation-powering", "--rounds", "1", "--max-depth", "1", "--eval-questions", "40",
        "--seed", "2", "--out", "study")


def test_a_table_study_writes_its_outputs_and_a_rerun_resumes_it(tmp_path: Path) -> None:
    done = hch_cli(*ARGS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "study"
    for name in ("rounds.csv", "ida.json", "plot.png", "plot.svg", "config.json", "rounds/round-0/labels.jsonl",
                 "models/amp-1.json", "models/sup-1.json"):
        assert (out / name).exists(), name
    assert "40 of 40 evaluation questions are also training questions" in done.stdout
    rows = {(r["kind"], r["round"], r["required_depth"]): r for r in csv.DictReader((out / "rounds.csv").open())}
    assert rows["amplification", "1", ""]["accuracy"] == "1.0"  # classes 0 and 1 after one round
    assert len(list((out / "traces" / "round-0").glob("*.json"))) == 256
    payload = json.loads((out / "ida.json").read_text())
    assert "gold_labels_used_by_amplification" not in payload["totals"] and payload["totals"]["h_calls"] > 0
    first = (out / "rounds.csv").read_text()
    again = hch_cli(*ARGS, cwd=tmp_path)
    assert again.returncode == 0 and (out / "rounds.csv").read_text() == first
    assert "256/256" in again.stderr and "H calls" not in again.stderr.split("256/256")[1].split("\n")[0]


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    unknown = hch_cli("ida", "--task", "chess", cwd=tmp_path)
    assert unknown.returncode == 1 and unknown.stderr.startswith("hch: error: unknown task 'chess'")
    assert len(unknown.stderr.strip().splitlines()) == 1
    small = ("ida", "--task", "permutation-powering", "--rounds", "1", "--max-depth", "0", "--eval-questions", "4",
             "--no-plot", "--out", "study")
    assert hch_cli(*small, "--seed", "2", cwd=tmp_path).returncode == 0
    other = hch_cli(*small, "--seed", "3", cwd=tmp_path)
    assert other.returncode == 1 and "holds a different IDA study" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
    learner = hch_cli("ida", "--task", "union-find", "--learner", "forest", cwd=tmp_path)
    assert learner.returncode == 2 and "forest" in learner.stderr and len(learner.stderr.strip().splitlines()) == 1


def test_ctrl_c_mid_round_then_the_same_command_finishes_with_the_same_result(tmp_path: Path) -> None:
    import signal

    args = ["ida", "--task", "permutation-powering", "--rounds", "3", "--max-depth", "3", "--eval-questions", "40",
            "--seed", "5", "--no-plot"]
    clean = hch_cli(*args, "--out", "clean", "--cache", "clean.sqlite", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    resumed = [*args, "--out", "study", "--cache", "study.sqlite"]
    running = subprocess.Popen(
        [sys.executable, "-m", "hch", *resumed], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "COLUMNS": "200"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # background jobs may inherit SIG_IGN
    )
    assert running.stderr is not None
    for line in running.stderr:  # round 1 starts labelling once X_1 is fitted: interrupt it there
        if line.startswith("fitted sup-1"):
            running.send_signal(signal.SIGINT)
            break
    rest = running.stderr.read()
    assert running.wait(timeout=300) == 130
    assert rest.strip().splitlines()[-1] == (
        "hch: interrupted; finished work is kept in study: rerun the same command to resume")
    assert not (tmp_path / "study" / "rounds.csv").exists()
    labelled = (tmp_path / "study" / "rounds" / "round-0" / "labels.jsonl").read_text().splitlines()
    assert len(labelled) == 1024  # round 0 was finished and kept
    again = hch_cli(*resumed, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "1024 done before" in again.stderr  # the rerun read round 0 back instead of labelling it again

    def figures(name: str) -> list[dict[str, str]]:  # all but the fit's wall time and the calls the cache served
        return [{k: v for k, v in r.items() if k not in ("fit_seconds", "h_calls_made")}
                for r in csv.DictReader((tmp_path / name / "rounds.csv").open())]

    # the same accuracies, labels and H calls as without the interruption (that no finished H call is made
    # twice is checked by the SIGKILL test of hch.learning.ida, which logs every call H makes)
    assert figures("study") == figures("clean")


# -- the bad-input campaign, as a class (issue 14) ---------------------------------------------------

SMALL = ["ida", "--task", "permutation-powering", "--rounds", "1", "--max-depth", "0", "--eval-questions", "4",
         "--no-plot", "--no-cache"]


@pytest.mark.parametrize(("extra", "said"), [
    (["--task", "arithmetic"], "task arithmetic has no facts to hide from H"),
    (["--rounds", "99999999999999999999"], "--rounds"), (["--instances", "99999999999999999999"], "--instances"),
    (["--questions", "10000000"], "--questions"), (["--hidden", "10000000"], "--hidden"),
    (["--epochs", "10000000"], "--epochs"), (["--concurrency", "99999999"], "--concurrency"),
    (["--depth", "1000"], "--depth"), (["--eval-questions", "nan"], "--eval-questions"),
    (["--out", ""], "empty path"), (["--out", "/dev/zero"], "not a directory"), (["--out", "/proc/x/y"], "/proc/x"),
    (["--task", "\x1b[31mred"], "unknown task '\\x1b[31mred'"), (["--policy", "\u202e"], "\\u202e"),
])
def test_bad_ida_options_are_one_line_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str], said: str
) -> None:
    monkeypatch.chdir(tmp_path)
    err = rejected([*SMALL, "--out", "study", *extra], capsys)
    assert said in err
    assert not (tmp_path / "study").exists()
