from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import hch
from hch.errors import TraceError
from hch.record.claim import PathInUse, claim, clear_stale_temps, temp_beside
from hch.record.journal import journal_path

SUM = "What is the sum of 3, 1, 4, 1?"


def test_a_claimed_path_is_refused_to_a_second_claimer_until_released(tmp_path: Path) -> None:
    path = tmp_path / "t.journal.jsonl"
    first = claim(path)
    with pytest.raises(PathInUse, match="still going"):
        claim(path)
    first.close()
    claim(path).close()  # released: a rerun takes it over


def test_a_journal_left_by_a_killed_run_is_taken_over_and_emptied(tmp_path: Path) -> None:
    path = tmp_path / "t.journal.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", "from hch.record.claim import claim; "
         f"f = claim(__import__('pathlib').Path({str(path)!r}));"
         "f.write(b'old'); f.flush(); print('held', flush=True); input()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    with pytest.raises(PathInUse):
        claim(path)
    holder.kill()
    holder.wait(timeout=30)
    with claim(path) as file:
        assert path.read_bytes() == b""
        file.write(b"new")
    assert path.read_bytes() == b"new"


def test_a_run_is_refused_a_trace_path_another_live_run_holds(tmp_path: Path) -> None:
    trace_path = tmp_path / "t.json"
    held = claim(journal_path(trace_path))
    with pytest.raises(PathInUse):
        hch.answer_sync(SUM, depth=2, trace_path=trace_path)
    held.close()
    assert hch.answer_sync(SUM, depth=2, trace_path=trace_path).answer == "9"


def test_a_journal_name_is_refused_as_a_trace_path(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"may not end in \.journal\.jsonl.*name it x\.json"):
        hch.answer_sync(SUM, depth=2, trace_path=tmp_path / "x.journal.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_files_of_killed_saves_are_removed_by_the_next_save(tmp_path: Path) -> None:
    target = tmp_path / "t.json"
    stale = tmp_path / ".t.json.abc123.tmp"
    stale.write_text("half a trace")
    other = tmp_path / ".other.json.abc123.tmp"  # another path's: left alone
    other.write_text("x")
    fd, live = temp_beside(tmp_path / "u.json")  # a save in progress to another path
    hch.save_trace(hch.answer_sync(SUM, depth=2).trace, target)
    assert not stale.exists() and other.exists() and live.exists()
    live_fd, in_progress = temp_beside(target)  # a save in progress to this path: locked, kept
    assert clear_stale_temps(target) == []
    assert in_progress.exists()
    os.close(live_fd)
    assert clear_stale_temps(target) == [in_progress]
    os.close(fd)
    assert {p.name for p in tmp_path.iterdir()} == {other.name, live.name, "t.json"}


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_saved_traces_and_journals_get_the_permissions_of_a_plain_open(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        result = hch.answer_sync(SUM, depth=2, trace_path=tmp_path / "t.json")
        with open(tmp_path / "plain", "w"):
            pass
        journal = claim(tmp_path / "j.journal.jsonl")
        journal.close()
    finally:
        os.umask(old)
    expected = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert expected == 0o666 & ~mask
    assert result.trace_path is not None
    assert stat.S_IMODE(result.trace_path.stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "j.journal.jsonl").stat().st_mode) == expected


def test_saving_over_an_existing_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "t.json"
    target.write_text("{}")
    target.chmod(0o640)
    hch.save_trace(hch.answer_sync(SUM, depth=2).trace, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert hch.load_trace(target).meta["answer"] == "9"
