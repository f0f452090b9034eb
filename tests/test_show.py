"""`hch show` of a large trace: the summary from its last record, without loading the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hch
from hch.cli import show
from hch.errors import TraceError
from hch.record import format as trace_format
from hch.record.trace import Trace

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def test_a_large_trace_shows_the_summary_its_end_record_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = hch.answer_sync(SUM, depth=3, trace_path=tmp_path / "t.json")
    monkeypatch.setattr(show, "WHOLE_BYTES", 10)  # every trace is "large" now

    def no_loading(path: Path) -> None:
        raise AssertionError("a large trace must not be loaded whole")

    monkeypatch.setattr(show, "load_any", no_loading)
    show.show.callback(tmp_path / "t.json", None, True, 40, False)  # type: ignore[misc]
    shown = json.loads(capsys.readouterr().out)
    assert shown["answer"] == "31" and shown["summary"] == result.summary.model_dump() and shown["whole"] is False
    show.show.callback(tmp_path / "t.json", None, False, 40, False)  # type: ignore[misc]
    text = capsys.readouterr().out
    assert "answer: 31" in text and "7 nodes" in text and "--full" in text


def test_ends_reads_only_the_first_and_last_records(tmp_path: Path) -> None:
    hch.answer_sync(SUM, depth=2, trace_path=tmp_path / "t.json")
    meta, end = trace_format.ends(tmp_path / "t.json")
    assert meta["question"] == SUM and meta["status"] == "running"  # as the run started
    assert end is not None and end["answer"] == "31" and end["status"] == "ok"
    lines = (tmp_path / "t.json").read_text().splitlines()
    (tmp_path / "cut.json").write_text("\n".join(lines[:-1]) + "\n")  # killed before its end record
    assert trace_format.ends(tmp_path / "cut.json")[1] is None
    (tmp_path / "old.json").write_text((Path(__file__).parent / "data" / "v1_trace.json").read_text())
    with pytest.raises(TraceError, match="not a trace in the record layout"):
        trace_format.ends(tmp_path / "old.json")


def test_an_unfinished_or_old_large_trace_is_loaded_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(show, "WHOLE_BYTES", 10)
    old = tmp_path / "old.json"
    old.write_text((Path(__file__).parent / "data" / "v1_trace.json").read_text())
    show.show.callback(old, None, True, 40, False)  # type: ignore[misc]
    assert json.loads(capsys.readouterr().out)["summary"]["nodes"] == 7


def test_a_trace_of_many_calls_shows_without_reading_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hch.record.lazy_record import LazyCall

    result = hch.answer_sync(SUM, depth=3, trace_path=tmp_path / "t.json")
    monkeypatch.setattr(show, "READ_CALLS", 1)  # every trace has "many" calls now
    loaded: list[object] = []
    real_load = LazyCall.load
    monkeypatch.setattr(LazyCall, "load", lambda call: (loaded.append(call), real_load(call))[1])
    show.show.callback(tmp_path / "t.json", None, True, 40, False)  # type: ignore[misc]
    shown = json.loads(capsys.readouterr().out)
    assert shown["summary"] == result.summary.model_dump() and shown["calls_read"] is False
    assert sum(shown["workspaces_per_depth"].values()) == 7
    show.show.callback(tmp_path / "t.json", None, False, 40, False)  # type: ignore[misc]
    text = capsys.readouterr().out
    assert "answer: 31" in text and "nodes: 7" in text and "not computed" in text and "--full" in text
    assert not loaded  # no call's line was parsed
    show.show.callback(tmp_path / "t.json", None, False, 40, True)  # type: ignore[misc]
    text = capsys.readouterr().out
    assert "critical path: " in text and "not computed" not in text and loaded


def test_a_trace_of_many_calls_is_loaded_without_them_unless_a_node_or_full_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hch.answer_sync(SUM, depth=3, trace_path=tmp_path / "t.json")
    monkeypatch.setattr(show, "READ_CALLS", 1)
    loads: list[int] = []
    real = show.load_any

    def spy(path: Path, calls: bool = True) -> Trace:
        trace = real(path, calls)
        loads.append(sum(1 for _ in trace.calls()))
        return trace

    monkeypatch.setattr(show, "load_any", spy)
    show.show.callback(tmp_path / "t.json", None, False, 40, False)  # type: ignore[misc]
    assert "answer: 31" in capsys.readouterr().out and loads == [0]  # workspaces and their edges only
    show.show.callback(tmp_path / "t.json", 0, False, 40, False)  # type: ignore[misc]
    assert "What is the sum" in capsys.readouterr().out and loads[-1] == 10  # one workspace: its calls too
    show.show.callback(tmp_path / "t.json", None, False, 40, True)  # type: ignore[misc]
    assert "critical path: " in capsys.readouterr().out and loads[-1] == 10
