from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

import hch
from hch.errors import TraceError
from hch.record.format import to_data
from hch.record.journal import Journal, for_trace, journal_path, load_any, load_journal
from hch.record.trace import Trace

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def comparable(trace: Trace) -> tuple[dict[int, dict[str, object]], dict[tuple[int, int], dict[str, object]]]:
    data = json.loads(json.dumps(to_data(trace), default=str))
    nodes = {n["id"]: n for n in data["nodes"]}
    edges = {(e["source"], e["target"]): {k: v for k, v in e.items() if v not in (None, 0)} for e in data["edges"]}
    return nodes, edges


def test_journal_path_sits_beside_the_trace() -> None:
    assert journal_path("traces/run.json") == Path("traces/run.journal.jsonl")
    assert journal_path("x/run.journal.jsonl") == Path("x/run.journal.jsonl")


def test_a_finished_run_deletes_its_journal_and_the_journal_rebuilds_the_same_graph(tmp_path: Path) -> None:
    result = hch.answer_sync(SUM, depth=3, trace_path=tmp_path / "t.json")
    assert not journal_path(tmp_path / "t.json").exists()
    # Record the same run with a journal kept open, as if the process had died after its last node.
    trace = Trace()
    journal = Journal(tmp_path / "kept.journal.jsonl", trace)
    trace.listeners.append(journal)
    hch.answer_sync(SUM, depth=3, trace=trace)
    journal.close()
    rebuilt = load_journal(tmp_path / "kept.journal.jsonl")
    assert comparable(rebuilt) == comparable(trace)
    assert rebuilt.meta["status"] == "unfinished"
    assert len(list(rebuilt.workspaces())) == result.summary.nodes


def test_journal_records_reach_the_file_within_the_event_loop_iteration(tmp_path: Path) -> None:
    path = tmp_path / "j.journal.jsonl"

    async def run() -> int:
        trace = Trace(question="q")
        journal = Journal(path, trace)
        trace.listeners.append(journal)
        trace.add_node("workspace", question="q", depth=0, policy="p", status="running")
        await anyio.sleep(0)  # one loop iteration: the flush scheduled by the record runs
        await anyio.sleep(0)
        lines = len(path.read_text().splitlines())
        journal.close()
        return lines

    assert anyio.run(run) == 2  # the header and the node, while the journal is still open


def test_a_cut_last_line_is_ignored_but_a_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    trace = Trace()
    journal = Journal(tmp_path / "a.journal.jsonl", trace)
    trace.listeners.append(journal)
    hch.answer_sync("What is (3 + 4) * (2 + 1)?", depth=2, trace=trace)
    journal.close()
    lines = (tmp_path / "a.journal.jsonl").read_text().splitlines()
    (tmp_path / "cut.journal.jsonl").write_text("\n".join(lines) + "\n" + lines[-1][: len(lines[-1]) // 2])
    assert comparable(load_journal(tmp_path / "cut.journal.jsonl")) == comparable(trace)
    (tmp_path / "bad.journal.jsonl").write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(TraceError, match="line 2 is not valid JSON"):
        load_journal(tmp_path / "bad.journal.jsonl")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an hch journal"),
        ('{"format": "something"}\n', "not an hch journal"),
        ('{"format": "hch-journal", "schema_version": 99, "meta": {}}\n', "journal schema version 99"),
        ('{"format": "hch-journal", "schema_version": 1, "meta": {}}\n', "holds no workspace"),
        ('{"format": "hch-journal", "schema_version": 1, "meta": {}}\n{"node": {"id": 0, "kind": "x"}}\n',
         "not a valid hch trace"),
    ],
)
def test_bad_journals_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "x.journal.jsonl").write_text(text)
    with pytest.raises(TraceError, match=message):
        load_journal(tmp_path / "x.journal.jsonl")


def test_load_any_reads_the_journal_only_when_it_is_newer_than_the_trace(tmp_path: Path) -> None:
    hch.answer_sync(SUM, depth=1, trace_path=tmp_path / "t.json")
    assert load_any(tmp_path / "t.json").meta["status"] == "guess"
    # A later run to the same path, still going (or killed): its journal is what is current.
    trace = Trace()
    journal = Journal(tmp_path / "t.journal.jsonl", trace)
    trace.add_node("workspace", question="later", depth=0, policy="p", status="running")
    journal("node", {"id": 0, **trace.graph.nodes[0]})
    journal.flush()
    os.utime(tmp_path / "t.json", ns=(0, 0))
    assert load_any(tmp_path / "t.json").graph.nodes[0]["question"] == "later"
    journal.close()
    os.utime(tmp_path / "t.journal.jsonl", ns=(0, 0))  # an old leftover journal is ignored
    assert load_any(tmp_path / "t.json").meta["status"] == "guess"
    with pytest.raises(TraceError, match="no trace file"):
        load_any(tmp_path / "missing.json")


# An instant policy that logs each call; the call for "b" hangs while the file `block` exists
# (after 50 ms: the call cache commits instant calls within 5 ms, by a timer, while the run waits).
STEPS = textwrap.dedent(
    """
    import sys, anyio
    from pathlib import Path
    from hch.cli import main
    from hch.policies.spec import register
    from hch.workspace import Answer, Ask

    class Steps:
        fingerprint = "steps@1"
        async def act(self, ws):
            with open("calls.log", "a") as log:
                log.write(f"{ws.question}#{len(ws.steps)}\\n")
            if ws.question == "b" and Path("block").exists():
                await anyio.sleep(0.05)
                print("waiting", flush=True)
                await anyio.sleep_forever()
            if ws.question != "root":
                return Answer(answer=ws.question.upper())
            if len(ws.steps) < 2:
                return Ask(questions=[["a1", "a2"], ["b"]][len(ws.steps)])
            return Answer(answer=" ".join(sub.answer for step in ws.steps for sub in step))

    register("steps")(lambda argument, options: Steps())
    main(sys.argv[1:])
    """
)
COMMAND = ["ask", "root", "--depth", "1", "--policy", "steps", "--trace", "t.json", "-q"]


def run_steps(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "steps.py", *args], cwd=folder, capture_output=True, text=True, timeout=60)


def test_sigkill_leaves_a_journal_show_reads_and_the_rerun_repeats_no_finished_call(tmp_path: Path) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for folder in (clean, killed):
        folder.mkdir()
        (folder / "steps.py").write_text(STEPS)
    reference = run_steps(clean, *COMMAND)
    assert reference.returncode == 0 and reference.stdout == "A1 A2 B\n", reference.stderr

    (killed / "block").touch()
    process = subprocess.Popen([sys.executable, "steps.py", *COMMAND], cwd=killed, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "waiting\n"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "t.json").exists() and (killed / "t.journal.jsonl").exists()

    shown = subprocess.run([sys.executable, "-m", "hch", "show", "t.json", "--json"], cwd=killed,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "unfinished"
    assert json.loads(shown.stdout)["question"] == "root"
    statuses = {d["question"]: (d["status"], d["answer"]) for _, d in load_any(killed / "t.json").workspaces()}
    assert statuses["a1"] == ("ok", "A1") and statuses["a2"] == ("ok", "A2")
    assert statuses["root"] == ("running", None)  # its last recorded state
    text = subprocess.run([sys.executable, "-m", "hch", "show", "t.json"], cwd=killed, capture_output=True,
                          text=True, timeout=60)
    assert "read from the journal" in text.stdout and "a1 → A1" in text.stdout
    viewed = subprocess.run([sys.executable, "-m", "hch", "view", "t.json"], cwd=killed, capture_output=True,
                            text=True, timeout=60)
    assert viewed.returncode == 0 and viewed.stdout == "t.html\n", viewed.stderr
    assert '"status":"running"' in (killed / "t.html").read_text()

    first_run = (killed / "calls.log").read_text().splitlines()
    assert first_run == ["root#0", "a1#0", "a2#0", "root#1", "b#0"] or sorted(first_run) == sorted(
        ["root#0", "a1#0", "a2#0", "root#1", "b#0"])
    (killed / "block").unlink()
    rerun = run_steps(killed, *COMMAND)
    assert rerun.returncode == 0 and rerun.stdout == reference.stdout, rerun.stderr
    second_run = (killed / "calls.log").read_text().splitlines()[len(first_run):]
    # Only the call that was in flight when the process died, and what came after it, are made again.
    assert second_run == ["b#0", "root#2"]
    assert not (killed / "t.journal.jsonl").exists()
    assert hch.load_trace(killed / "t.json").meta["answer"] == "A1 A2 B"


def test_when_the_trace_cannot_be_saved_the_journal_stays_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hch.record import journal as journal_module

    def full_disk(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_module.os, "replace", full_disk)  # the journal's last step: becoming the trace
    with pytest.raises(OSError, match="No space left"):
        hch.answer_sync(SUM, depth=3, trace_path=tmp_path / "t.json")
    rebuilt = load_any(tmp_path / "t.json")
    assert {d["status"] for _, d in rebuilt.workspaces()} == {"ok"} and len(list(rebuilt.workspaces())) == 7


def test_text_utf8_cannot_encode_is_still_journaled_escaped(tmp_path: Path) -> None:
    trace = Trace(question="q")
    journal = Journal(tmp_path / "s.journal.jsonl", trace)
    trace.listeners.append(journal)
    trace.add_node("workspace", question="q", depth=0, policy="p", status="ok", answer="lone \ud800 surrogate")
    trace.add_node("workspace", question="é", depth=0, policy="p", status="ok", answer="plain")
    journal.close()
    lines = (tmp_path / "s.journal.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["node"]["answer"] for line in lines[1:]] == ["lone \ud800 surrogate", "plain"]
    assert "\\ud800" in lines[1] and "é" in lines[2]  # escaped by the fallback; UTF-8 otherwise


def test_the_journal_of_a_run_writing_x_is_never_read_as_the_trace_x_json(tmp_path: Path) -> None:
    hch.answer_sync(SUM, depth=3, trace_path=tmp_path / "x.json")
    other = Trace(question="other")
    journal = for_trace(tmp_path / "x", other)  # another run, writing the trace `x`, is going
    other.listeners.append(journal)
    other.add_node("workspace", question="other", depth=0, policy="p", status="running")
    journal.flush()
    os.utime(tmp_path / "x.journal.jsonl", ns=(2**62, 2**62))  # newer than x.json
    assert load_any(tmp_path / "x.json").meta["question"] == SUM
    assert load_any(tmp_path / "x").meta["question"] == "other"
    journal.close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_where_a_journal_would_be_never_blocks_a_reader(tmp_path: Path) -> None:
    """`load_any` peeks at the journal beside a trace; a FIFO there used to block it for ever."""
    import hch

    hch.answer_sync("What is the sum of 1, 2?", depth=1, trace_path=tmp_path / "run.json")
    os.mkfifo(tmp_path / "run.journal.jsonl")
    later = (tmp_path / "run.json").stat().st_mtime_ns + 10**9  # newer than the trace: it is consulted
    os.utime(tmp_path / "run.journal.jsonl", ns=(later, later))
    with pytest.raises(TraceError, match="is not a regular file"):
        load_any(tmp_path / "run.json")


def test_a_busy_event_loop_leaves_at_most_max_pending_records_unwritten(tmp_path: Path) -> None:
    """The README's durability promise under load (issue 14): the per-iteration flush cannot run while
    the loop is busy, so only the count holds: fewer than MAX_PENDING records wait in the buffer."""
    from hch.record import journal as journaling

    path = tmp_path / "j.journal.jsonl"
    unwritten: list[int] = []

    async def busy() -> None:  # never yields: the scheduled flush never gets to run
        trace = Trace(question="q")
        journal = Journal(path, trace)
        trace.listeners.append(journal)
        for i in range(3 * journaling.MAX_PENDING + 100):
            trace.add_node("workspace", question=f"q{i}", depth=0, policy="p", status="running")
            if i % 97 == 0 or i % journaling.MAX_PENDING in (journaling.MAX_PENDING - 2, journaling.MAX_PENDING - 1):
                unwritten.append(i + 2 - len(path.read_bytes().splitlines()))  # + the header
        journal.close()

    anyio.run(busy)
    assert 0 < max(unwritten) < journaling.MAX_PENDING
    assert len(path.read_text().splitlines()) == 3 * journaling.MAX_PENDING + 101


def test_a_streamed_run_writes_no_call_edge_its_calls_imply_even_when_a_full_buffer_is_flushed_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call's node and its edge come one after the other; a flush of a full buffer between the two
    used to leave the edge without its call to compare with, so the edge was written."""
    from helpers import FunctionPolicy

    from hch.record import journal as journaling
    from hch.workspace import Answer, Ask, Workspace

    async def binary(workspace: Workspace) -> Ask | Answer:  # a full binary tree of distinct questions
        asks = workspace.depth > 0 and not workspace.steps
        return Ask(questions=[workspace.question + "0", workspace.question + "1"]) if asks else Answer(answer="done")

    monkeypatch.setattr(journaling, "MAX_PENDING", 7)  # a flush every few records, between any two of them
    path = tmp_path / "t.json"
    result = hch.answer_sync("q", depth=5, policy=FunctionPolicy(binary), trace_path=path, keep_trace=False)
    assert result.summary.policy_calls == 94  # 31 workspaces that ask (two calls each), 32 leaves
    edges = [json.loads(line)["edge"] for line in path.read_text().splitlines() if line.startswith('{"edge"')]
    assert edges and not [edge for edge in edges if edge["kind"] == "call"]
