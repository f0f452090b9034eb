"""`--workers` and `--ray` of `hch sweep` and `hch ida`: bad values are one line, the results those of one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hch.cli import main

COMMANDS = {
    "sweep": ["sweep", "--task", "union-find", "-n", "2", "--depths", "0-1", "--no-plot", "--out", "s"],
    "ida": ["ida", "--task", "union-find", "--rounds", "1", "--eval-questions", "4", "--no-plot", "--out", "s"],
}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(("option", "value", "status", "message"), [
    ("--workers", "0", 2, "'0' is not a number of workers: give a whole number from 1 to 256, or auto"),
    ("--workers", "-1", 2, "'-1' is not a number of workers"),
    ("--workers", "nan", 2, "'nan' is not a number of workers"),
    ("--workers", "1000000", 2, "'1000000' is not a number of workers"),
    ("--ray", "head:port", 2, "'head:port' is not a Ray address: give HOST:PORT"),
    ("--ray", "127.0.0.1:{closed}", 1, "no Ray cluster answers at 127.0.0.1:"),
])
def test_bad_workers_and_ray_values_are_one_line_before_anything_is_written(
        command: str, option: str, value: str, status: int, message: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    if option == "--ray":
        pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main([*COMMANDS[command], option, value.format(closed=closed_port())])
    err = capsys.readouterr().err
    assert exited.value.code == status and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_person_at_the_prompt_is_not_split_across_workers(
        command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main([*COMMANDS[command], "--policy", "human", "--workers", "2"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "need a policy without a person at the prompt" in err and err.count("\n") == 1


def test_a_sweep_on_two_workers_prints_and_records_what_one_process_does(tmp_path: Path) -> None:
    args = ["sweep", "--task", "permutation-powering", "-n", "6", "--depths", "0-3", "--no-plot", "--votes", "1,3"]
    outputs = {}
    for workers in ("1", "2"):
        done = subprocess.run([sys.executable, "-m", "hch", *args, "--workers", workers, "--out", workers,
                               "--cache", f"{workers}.sqlite"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 0, done.stderr
        runs = [json.loads(line) for line in (tmp_path / workers / "runs.jsonl").read_text().splitlines()]
        kept = ("votes", "id", "depth", "answer", "status", "correct", "nodes", "calls", "invocations", "trace")
        outputs[workers] = sorted(tuple(r[k] for k in kept) for r in runs)
    assert outputs["1"] == outputs["2"] and len(outputs["1"]) == 6 * 4 * 2
