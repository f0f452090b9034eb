from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

import hch
from hch.cli import app
from hch.review.outcome import TABLE, ExitStatus, exit_status

README = Path(hch.__file__).parents[1] / "README.md"


def test_the_readme_and_help_list_every_exit_status_and_no_other() -> None:
    section = README.read_text(encoding="utf-8").split("### Exit status", 1)[1].split("\n\n", 2)[1]
    documented = [int(code) for code in re.findall(r"^\| *(\d+) *\|", section, re.M)]
    assert documented == [status.value for status in ExitStatus]
    assert [int(line.split()[0]) for line in TABLE.splitlines()[1:]] == [status.value for status in ExitStatus]
    shown = CliRunner().invoke(app, ["--help"]).output
    assert all(" ".join(line.split()) in " ".join(shown.split()) for line in TABLE.splitlines())


def test_exit_status_of_recorded_runs() -> None:
    assert exit_status(hch.answer_sync("What is the sum of 1, 2, 3, 4?", depth=2).trace) is ExitStatus.OK
    assert exit_status(hch.answer_sync("What is the sum of 1, 2, 3, 4?", depth=0).trace) is ExitStatus.GUESSED
    assert exit_status(hch.answer_sync("What is 1 / 0?", depth=1).trace) is ExitStatus.FAILED
    limited = hch.answer_sync("What is the sum of 1, 2, 3, 4?", depth=2, limits=hch.Limits(max_total_tokens=0))
    assert exit_status(limited.trace) is ExitStatus.LIMITED
