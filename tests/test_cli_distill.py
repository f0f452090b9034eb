"""`hch distill` from the command line, and the LLM path: export, "fine-tune", run `--policy llm`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import bad_files, cli_in_process, rejected

import hch
from hch.cli.render import plain
from hch.testing.openai_server import OpenAIServer, Seen, Step


def hch_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hch", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


QUESTION = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def test_distill_prints_a_summary_and_writes_the_files(tmp_path: Path) -> None:
    assert hch_cli("ask", QUESTION, "--depth", "3", "--trace", "run.json", cwd=tmp_path).returncode == 0
    done = hch_cli("distill", "run.json", "--out", "data", "--all-workspaces", "--validation", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 runs from 1 instances") and "pairs: kept 7" in done.stdout
    for name in ("pairs-train", "pairs-validation", "chat-train", "chat-validation"):
        assert (tmp_path / "data" / f"{name}.jsonl").exists()


def test_bad_input_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"format": "hch-trace", "schema_version": 1, "nodes": [')
    for args, expected in (
        (("distill", "broken.json", "--out", "d"), "broken.json is not valid JSON"),
        (("distill", "missing.json", "--out", "d"), "no such file or directory: missing.json"),
        (("distill", "broken.json", "--out", "d", "--status", "maybe"), "unknown status maybe"),
        (("distill", "broken.json", "--out", "d", "--preset", "nope"), "no preset named 'nope'"),
        (("distill", "broken.json", "--out", ""), "an empty path names no file"),  # not the current folder
        (("distill", "", "--out", "d"), "an empty path names no file"),
        (("distill", "broken.json", "--out", "broken.json/d"), "broken.json is a file, not a directory"),
    ):
        done = hch_cli(*args, cwd=tmp_path)
        assert done.returncode != 0 and expected in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_a_model_fine_tuned_on_the_export_runs_as_the_llm_policy(tmp_path: Path) -> None:
    """The README's path: export chat data, fine-tune with a provider, run --policy llm --model <fine-tuned>.
    The scripted server stands in for a fine-tuned model that learned its training data perfectly."""
    assert hch_cli("ask", QUESTION, "--depth", "3", "--trace", "run.json", cwd=tmp_path).returncode == 0
    assert hch_cli("distill", "run.json", "--out", "data", "--validation", "0", cwd=tmp_path).returncode == 0
    learned = {}
    for line in (tmp_path / "data" / "chat-train.jsonl").read_text().splitlines():
        messages = json.loads(line)["messages"]
        learned[json.dumps(messages[:2])] = messages[2]["content"]

    def fine_tuned(seen: Seen) -> Step:
        return Step(content=learned.get(json.dumps(seen.messages[:2]), '{"kind": "answer", "questions": [], '
                                                                        '"answer": "never trained on this"}'))

    with OpenAIServer(fine_tuned, models={"ft:hch-expert"}) as server:
        done = hch_cli("ask", QUESTION, "--depth", "3", "--policy", "llm", "--model", "ft:hch-expert",
                       "--base-url", server.base_url, "--no-cache", "--quiet", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "31"
        assert len(server.requests) == len(learned) == 10  # every call was one the model was trained on


# -- the bad-input campaign, as a class (issue 14) ---------------------------------------------------

@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "dev-zero", "empty", "png", "not-utf8",
                                  "other-json", "json-list", "escape-name", "huge"])
def test_every_kind_of_bad_input_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    hch.answer_sync("What is the sum of 1, 2?", depth=1, trace_path=tmp_path / "good.json")
    bad = str(bad_files(tmp_path)[kind])
    rejected(["distill", bad, "--out", "d"], capsys)
    if kind not in ("missing", "escape-name", "empty"):  # the default preset's name then applies
        rejected(["distill", "good.json", "--out", "d", "--preset", bad], capsys)


@pytest.mark.parametrize("name", ["out\x1b]0;pwn\x07", "rtl\u202eout", "c1\x9bout"])
def test_the_paths_distill_prints_are_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    hch.answer_sync("What is the sum of 1, 2?", depth=1, trace_path=tmp_path / "good.json")
    code, out, _ = cli_in_process(["distill", "good.json", "--out", name], capsys)
    assert code == 0 and plain(name) in out and (tmp_path / name).is_dir()
