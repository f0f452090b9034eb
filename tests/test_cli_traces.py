from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
from helpers import bad_files, cli_in_process, rejected, spoil_last_record, trace_data

import hch
from hch.cli import main
from hch.cli.render import plain
from hch.record.format import SCHEMA_VERSION, load, save

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"
EXAMPLES = Path(__file__).resolve().parent.parent / "traces" / "examples"


def hch_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hch", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def run(tmp_path: Path) -> Path:
    hch.answer_sync(SUM, depth=3, trace_path=tmp_path / "t.json")
    return tmp_path / "t.json"


def test_show_prints_tree_and_statistics(run: Path) -> None:
    done = hch_cli("show", "t.json", cwd=run.parent)
    assert done.returncode == 0, done.stderr
    assert "answer: 31" in done.stdout and "#2 n=2 What is the sum of 3, 1, 4, 1? → 9" in done.stdout
    assert "critical path:" in done.stdout and "nodes: 7 (n=3: 1, n=2: 2, n=1: 4)" in done.stdout
    figures = json.loads(hch_cli("show", "t.json", "--json", cwd=run.parent).stdout)
    assert figures["summary"]["policy_calls"] == 10 and figures["critical_path_calls"]["length"] == 5


def test_show_node_prints_every_call_with_input_and_output(run: Path) -> None:
    done = hch_cli("show", "t.json", "--node", "2", cwd=run.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("── call #") == 2 and '"steps": []' in done.stdout and '"kind": "ask"' in done.stdout
    record = json.loads(hch_cli("show", "t.json", "--node", "2", "--json", cwd=run.parent).stdout)
    assert record["question"] == "What is the sum of 3, 1, 4, 1?" and len(record["calls"]) == 2
    call = record["calls"][0]["id"]
    assert "of workspace #2" in hch_cli("show", "t.json", "--node", str(call), cwd=run.parent).stdout


def lookup(table: dict[str, str], key: str) -> str:
    return table[key]


async def buggy(ws: hch.Workspace) -> str:
    return lookup({}, "missing")


def test_show_node_prints_the_traceback_of_an_exception_a_policy_raised(tmp_path: Path) -> None:
    hch.answer_sync("q", depth=0, policy=buggy, trace_path=tmp_path / "t.json")
    done = hch_cli("show", "t.json", "--node", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback (most recent call last):" in done.stdout
    assert "in lookup" in done.stdout and "KeyError: 'missing'" in done.stdout


def test_replay_exits_zero_when_reproduced_and_one_on_divergence(run: Path) -> None:
    done = hch_cli("replay", "t.json", cwd=run.parent)
    assert done.returncode == 0 and done.stdout.startswith("reproduced: answer '31'"), done.stderr
    trace = load(run)
    leaf = next(n for n, d in trace.workspaces() if d["question"] == "What is the sum of 2, 6?")
    trace.graph.nodes[trace.node_calls(leaf)[0]]["output"]["answer"] = "9"
    save(trace, run.parent / "tampered.json")
    done = hch_cli("replay", "tampered.json", "--json", cwd=run.parent)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["reproduced"] is False and report["divergence"]["question"] == "What is the sum of 5, 9, 2, 6?"
    text = hch_cli("replay", "tampered.json", cwd=run.parent).stdout
    asker = next(n for n, d in trace.workspaces() if d["question"] == "What is the sum of 5, 9, 2, 6?")
    assert f"first call the recording could not serve: node {asker}" in text


def test_replay_with_another_policy_from_a_node_reports_and_writes_its_trace(run: Path) -> None:
    done = hch_cli("replay", "t.json", "--policy", "expert", "--from-node", "2", "--trace", "r.json", cwd=run.parent)
    assert done.returncode == 0, done.stderr
    assert "reproduced" in done.stdout  # the expert is the recorded policy: nothing changes
    assert load(run.parent / "r.json").meta["replay_policy"] == "expert"


def test_diff_reports_agreement_and_differences(run: Path) -> None:
    assert hch_cli("diff", "t.json", "t.json", cwd=run.parent).returncode == 0
    hch.answer_sync(SUM, depth=1, trace_path=run.parent / "shallow.json")
    done = hch_cli("diff", "t.json", "shallow.json", cwd=run.parent)
    assert done.returncode == 1 and "first difference: node 0" in done.stdout
    # at depth 1 the expert asks the two halves, which guess at depth 0: the 4 nodes below them are only in a
    assert json.loads(hch_cli("diff", "t.json", "shallow.json", "--json", cwd=run.parent).stdout)["only_in_a"] == 4


def test_export_writes_every_format_beside_the_trace(run: Path) -> None:
    for fmt, name in [("json", "t.export.json"), ("graphml", "t.graphml"), ("gexf", "t.gexf"), ("dot", "t.dot"),
                      ("jsonl", "t.jsonl")]:
        done = hch_cli("export", "t.json", "--format", fmt, cwd=run.parent)
        assert done.returncode == 0 and done.stdout.strip() == name, done.stderr
    assert nx.read_graphml(run.parent / "t.graphml").number_of_nodes() == 17
    assert hch_cli("export", "t.json", "-f", "dot", "-o", "x.gv", cwd=run.parent).stdout.strip() == "x.gv"


def test_view_writes_the_page_and_prints_its_path(run: Path) -> None:
    done = hch_cli("view", "t.json", cwd=run.parent)
    assert done.returncode == 0 and done.stdout.strip() == "t.html"
    page = (run.parent / "t.html").read_text()
    assert "hch-data" in page and "http://" not in page and "https://" not in page


def test_every_command_reads_the_committed_examples(tmp_path: Path) -> None:
    example = tmp_path / "ex.json"
    shutil.copy(EXAMPLES / "subtree-reuse.json", example)
    for args in (["show", "ex.json"], ["replay", "ex.json"], ["view", "ex.json"], ["export", "ex.json", "-f", "gexf"]):
        done = hch_cli(*args, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr)


BAD_FILES = {
    "truncated.json": None,  # filled from a real trace, cut in half
    "foreign.json": '{"nodes": [], "edges": []}',
    "list.json": "[1, 2, 3]",
    "newer.json": json.dumps({"format": "hch-trace", "schema_version": SCHEMA_VERSION + 1, "graph": {},
                              "nodes": [], "edges": []}),
    "invalid.json": json.dumps({"format": "hch-trace", "schema_version": 1, "graph": {},
                                "nodes": [{"id": 0, "kind": "workspace"}], "edges": []}),
    "empty.json": "",
    "binary.json": None,
    "bad.journal.jsonl": '{"format": "hch-journal", "schema_version": 1, "meta": {}}\n{oops\n{}\n',
}
MESSAGES = {
    "truncated.json": "not valid JSON (truncated or corrupt?)",
    "foreign.json": "is not an hch trace",
    "list.json": "is not an hch trace",
    "newer.json": "written by a newer hch",
    "invalid.json": "is not a valid hch trace",
    "empty.json": "not valid JSON",
    "binary.json": "is not UTF-8 text",
    "bad.journal.jsonl": "line 2 is not valid JSON",
    "missing.json": "no trace file at missing.json",
}


@pytest.mark.parametrize("command", [["show"], ["show", "--node", "0"], ["replay"], ["view"], ["export", "-f", "dot"],
                                     ["diff", "ok.json"]])
def test_corrupt_foreign_and_newer_files_are_one_line_errors(
    run: Path, command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = run.parent
    (folder / "ok.json").write_bytes(run.read_bytes())
    for name, text in BAD_FILES.items():
        if name == "truncated.json":
            (folder / name).write_text(run.read_text()[: len(run.read_text()) // 2])
        elif name == "binary.json":
            (folder / name).write_bytes(b"\xff\xfe\x00garbage")
        else:
            assert text is not None
            (folder / name).write_text(text)
    monkeypatch.chdir(folder)
    for name, message in MESSAGES.items():
        args = [command[0], name, *command[1:]]
        with pytest.raises(SystemExit) as exited:  # in-process: 54 subprocesses would be slow
            main(args)
        out, err = capsys.readouterr()
        assert exited.value.code == (2 if command[0] == "diff" else 1), (args, out)  # diff: 1 means "differ"
        assert err.count("\n") == 1 and message in err, (args, err)
        assert err.startswith("hch: error: ") and "Traceback" not in err
    assert not any(p.name.endswith(".html") and p.stem in {n.split(".")[0] for n in MESSAGES} for p in folder.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "t.json", "--node", "999"], "the trace has no node 999"),
        (["replay", "t.json", "--from-node", "2"], "--from-node needs --policy"),
        (["replay", "t.json", "--policy", "expert", "--from-node", "1"], "no workspace node 1"),
        (["replay", "t.json", "--policy", "nonsense"], "unknown policy 'nonsense'"),
        (["export", "t.json", "--format", "xml"], "--format"),
    ],
)
def test_bad_arguments_are_one_line_errors(run: Path, args: list[str], message: str) -> None:
    done = hch_cli(*args, cwd=run.parent)
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_a_bad_file_is_one_line_in_a_real_process_too(tmp_path: Path) -> None:
    (tmp_path / "foreign.json").write_text("{}")
    done = hch_cli("show", "foreign.json", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "is not an hch trace" in done.stderr


@pytest.mark.parametrize("command", ["show", "view", "replay", "export"])
def test_an_empty_path_is_a_one_line_error(tmp_path: Path, command: str) -> None:
    done = hch_cli(command, "", cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().startswith("hch: error: Invalid value for 'PATH': an empty path names no file")


@pytest.mark.parametrize("fmt", ["json", "graphml", "gexf", "dot", "jsonl"])
def test_export_to_dash_writes_to_stdout_and_no_file(run: Path, fmt: str) -> None:
    done = subprocess.run([sys.executable, "-m", "hch", "export", "t.json", "-f", fmt, "-o", "-"], cwd=run.parent,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (run.parent / "beside").write_bytes(b"")
    assert hch_cli("export", "t.json", "-f", fmt, "-o", f"file.{fmt}", cwd=run.parent).returncode == 0
    assert done.stdout == (run.parent / f"file.{fmt}").read_bytes()
    assert not (run.parent / "-").exists()


def test_view_to_dash_writes_the_page_to_stdout(run: Path) -> None:
    done = hch_cli("view", "t.json", "-o", "-", cwd=run.parent)
    assert done.returncode == 0 and done.stdout.startswith("<!DOCTYPE html>") and "hch-data" in done.stdout
    assert not (run.parent / "-").exists() and not (run.parent / "t.html").exists()


def test_show_prints_the_shared_context_escaped(tmp_path: Path) -> None:
    hch.answer_sync("What is 2 + 3?", depth=1, context="Facts: \x1b[31mred", trace_path=tmp_path / "c.json")
    done = hch_cli("show", "c.json", cwd=tmp_path)
    assert "context: Facts: \\x1b[31mred" in done.stdout.splitlines()


def test_show_on_a_sweep_directory_lists_its_runs(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text('{"id": "a", "question": "What is 2 * (3 + 4)?", "answer": "14"}\n')
    hch_cli("sweep", "q.jsonl", "--depths", "0,1", "--out", "o", "--no-cache", "--no-plot", cwd=tmp_path)
    done = hch_cli("show", "o", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "2 runs in o",
        "a votes=1 n=0 guess ✗ → 6 · o/traces/votes-1/a/depth-0.json",
        "a votes=1 n=1 ok ✓ → 14 · o/traces/votes-1/a/depth-1.json",
    ]
    records = [json.loads(line) for line in hch_cli("show", "o", "--json", cwd=tmp_path).stdout.splitlines()]
    assert [(r["id"], r["depth"], r["status"], r["answer"]) for r in records] == [("a", 0, "guess", "6"),
                                                                                 ("a", 1, "ok", "14")]
    assert hch.load_trace(tmp_path / records[1]["trace"]).meta["answer"] == "14"
    other = hch_cli("show", "o/traces", cwd=tmp_path)
    assert other.returncode == 1 and other.stderr.count("\n") == 1 and "no runs.jsonl" in other.stderr
    runs = tmp_path / "o" / "runs.jsonl"
    lines = sorted(runs.read_text().splitlines(), key=lambda line: json.loads(line)["depth"])
    cut = {**json.loads(lines[1]), "status": "error", "answer": "", "correct": None, "finished": False}
    runs.write_text(json.dumps(cut) + "\n" + "\n".join(lines) + "\n")  # cut short by a budget, then made
    assert hch_cli("show", "o", cwd=tmp_path).stdout.splitlines() == done.stdout.splitlines()
    runs.write_text(lines[0] + "\n" + json.dumps(cut) + "\n")  # cut short (or a participant quit), not made yet
    assert hch_cli("show", "o", cwd=tmp_path).stdout.splitlines() == [
        "2 runs in o (1 unfinished: rerun the sweep to finish them)",
        "a votes=1 n=0 guess ✗ → 6 · o/traces/votes-1/a/depth-0.json",
        "a votes=1 n=1 unfinished →  · o/traces/votes-1/a/depth-1.json",
    ]
    runs.write_text("\n".join(lines) + "\n")  # runs recorded before invocations were counted are listed too
    old = [{k: v for k, v in json.loads(line).items() if k not in ("invocations", "invocations_made", "guess_on_path")}
           for line in runs.read_text().splitlines()]
    runs.write_text("".join(json.dumps(record) + "\n" for record in old))
    assert hch_cli("show", "o", cwd=tmp_path).stdout.splitlines()[0] == "2 runs in o"


def test_piped_output_is_not_wrapped_at_80_columns(tmp_path: Path) -> None:
    long = "What is the sum of " + ", ".join(str(i) for i in range(1, 30)) + "?"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    asked = subprocess.run([sys.executable, "-m", "hch", "ask", long, "--depth", "0", "--trace", "t.json"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    shown = subprocess.run([sys.executable, "-m", "hch", "show", "t.json"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, env=env)
    for output in (asked.stdout, shown.stdout):  # the tree's line is whole: question, answer and markers
        assert f"#0 n=0 {long} → 362.5 [guess]" in output.splitlines(), output  # the question uncut too
    assert "1 node · 1 policy call · 0 cache hits · deepest level 0 · " in asked.stdout
    assert f"question: {long}\n" in shown.stdout


def test_diff_of_a_valid_and_a_corrupt_trace_fails_with_exit_2(tmp_path: Path) -> None:
    """A cycle of delegations used to load, and diff reported that the traces agree."""
    import hch

    hch.answer_sync("What is the sum of 3, 1, 4, 1?", depth=2, trace_path=tmp_path / "ok.json")
    data = trace_data(tmp_path / "ok.json")
    child = next(e for e in data["edges"] if e["kind"] == "delegate")
    data["edges"].append({**child, "source": child["target"], "target": child["source"]})
    (tmp_path / "cycle.json").write_text(json.dumps(data))
    for args in (["ok.json", "cycle.json"], ["cycle.json", "ok.json"]):
        done = hch_cli("diff", *args, cwd=tmp_path)
        assert done.returncode == 2, done
        assert done.stderr.count("\n") == 1 and "form a cycle" in done.stderr and not done.stdout
    assert hch_cli("diff", "ok.json", "ok.json", cwd=tmp_path).returncode == 0


def test_show_on_a_sweep_directory_with_a_corrupt_run_list_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "runs.jsonl").write_bytes(b'{"id": "caf\xe9"}\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["show", "o"])
    err = capsys.readouterr().err
    assert exited.value.code != 0 and err.count("\n") == 1 and "is not UTF-8 text: byte 0xe9 on line 1" in err


# -- bad input to every trace command (issue 14): one documented line, nothing raw, nothing hung ------


TRACE_COMMANDS = [["show", "{}"], ["show", "{}", "--json"], ["diff", "{}", "{good}"], ["diff", "{good}", "{}"],
                  ["replay", "{}"], ["export", "{}"], ["export", "{}", "-f", "graphml"], ["view", "{}"]]


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "dev-zero", "empty", "png", "not-utf8",
                                  "other-json", "json-list", "escape-name", "huge"])
def test_every_trace_command_refuses_what_is_no_trace_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    hch.answer_sync("What is the sum of 1, 2?", depth=1, trace_path=tmp_path / "good.json")
    bad = bad_files(tmp_path)[kind]
    if kind == "escape-name":
        bad.write_text("{")
    for command in TRACE_COMMANDS:
        args = [part.format(str(bad), good=str(tmp_path / "good.json")) for part in command]
        rejected(args, capsys)


@pytest.mark.parametrize(("args", "status"), [
    (["show", "{t}", "--node", "nan"], 2), (["show", "{t}", "--node", "99999999999999999999"], 1),
    (["show", "{t}", "--lines", "0"], 2), (["show", "{t}", "--lines", "-1"], 2),
    (["replay", "{t}", "--from-node", "3"], 2), (["replay", "{t}", "--policy", "expert", "--from-node", "999"], 1),
    (["replay", "{t}", "--policy", "\x1b[31mnope"], 1), (["replay", "{t}", "--policy", "\udcff"], 1),
    (["export", "{t}", "--format", "\x07"], 2), (["export", "{t}", "-o", ""], 2), (["view", "{t}", "-o", " "], 2),
    (["export", "{t}", "-o", "{t}/x"], 1), (["view", "{t}", "-o", "dir"], 1),
])
def test_bad_options_of_the_trace_commands_are_one_line(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], status: int
) -> None:
    monkeypatch.chdir(run.parent)
    (run.parent / "dir").mkdir()
    err = rejected([part.format(t=str(run)) for part in args], capsys)
    assert err and cli_exit(capsys, [part.format(t=str(run)) for part in args]) == status


def cli_exit(capsys: pytest.CaptureFixture[str], args: list[str]) -> int:
    return cli_in_process(args, capsys)[0]


@pytest.mark.parametrize("args", [
    ["export", "{t}", "-o", "{fifo}"], ["view", "{t}", "-o", "{fifo}"], ["replay", "{t}", "--trace", "{fifo}"],
    ["export", "{t}", "-f", "dot", "-o", "{fifo}"],
])
def test_a_fifo_nothing_reads_as_output_is_refused_at_once(
    run: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    os.mkfifo(run.parent / "fifo")
    err = rejected([part.format(t=str(run), fifo=str(run.parent / "fifo")) for part in args], capsys)
    assert "nothing is reading this FIFO" in err


@pytest.mark.parametrize("name", ["out\x1b]0;pwn\x07", "rtl\u202eout", "c1\x9bx"])
def test_paths_printed_by_export_and_view_are_escaped(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    monkeypatch.chdir(run.parent)
    exports = ["export", str(run), "-o", f"{name}.graphml", "-f", "graphml"]
    for args in (exports, ["view", str(run), "-o", f"{name}.html"]):
        code, out, _ = cli_in_process(args, capsys)
        target = args[3]
        assert code == 0 and (run.parent / target).exists() and out.strip() == plain(target)


# -- a sweep directory given to export and view: every run, and an index page -----------------------------

@pytest.fixture
def sweep_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text(
        '{"id": "<b>one</b>", "question": "What is the sum of 1, 2?", "answer": "3"}\n'
        '{"id": "two", "question": "What is the sum of 4, 5, 6?", "answer": "15"}\n'
    )
    code, _, err = cli_in_process(["sweep", "q.jsonl", "--depths", "0,1", "--out", "sw", "--no-plot", "--no-cache"],
                                  capsys)
    assert code == 0, err
    return tmp_path / "sw"


def test_export_of_a_sweep_writes_every_runs_trace_in_the_format(sweep_dir: Path, capsys: pytest.CaptureFixture[str]
                                                                 ) -> None:
    code, out, _ = cli_in_process(["export", str(sweep_dir), "-f", "jsonl"], capsys)
    written = [Path(line) for line in out.splitlines()]
    assert code == 0 and len(written) == 4 and all(p.suffix == ".jsonl" and p.exists() for p in written)
    code, out, _ = cli_in_process(["export", str(sweep_dir), "-f", "json", "-o", str(sweep_dir.parent / "all")],
                                  capsys)
    copies = [Path(line) for line in out.splitlines()]
    assert code == 0 and len(set(copies)) == 4 and all(p.is_relative_to(sweep_dir.parent / "all") for p in copies)
    assert {hch.load_trace(p).meta["answer"] for p in copies} >= {"3", "15"}


def test_view_of_a_sweep_writes_every_runs_page_and_an_escaped_index(
    sweep_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli_in_process(["view", str(sweep_dir)], capsys)
    index = Path(out.strip())
    assert code == 0 and index == sweep_dir / "index.html"
    page = index.read_text()
    assert "&lt;b&gt;one&lt;/b&gt;" in page and "<b>one" not in page  # ids are data, never markup
    links = re.findall(r'href="([^"]+)"', page)
    assert len(links) == 4 and all((index.parent / link).is_file() for link in links)
    code, out, _ = cli_in_process(["view", str(sweep_dir), "-o", str(sweep_dir.parent / "pages")], capsys)
    assert code == 0 and len(re.findall(r'href="([^"]+)"', Path(out.strip()).read_text())) == 4


def test_export_and_view_of_a_sweep_to_stdout_or_with_an_unreadable_run_say_so_in_one_line(
    sweep_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("export", "view"):
        err = rejected([command, str(sweep_dir), "-o", "-"], capsys)
        assert "is a sweep of many: give one run's trace" in err
    victim = next(sweep_dir.rglob("depth-1.json"))
    victim.write_text("{")
    code, out, err = cli_in_process(["export", str(sweep_dir), "-f", "dot"], capsys)
    assert code == 1 and len(out.splitlines()) == 3 and "1 of 4 runs could not be exported" in err
    code, out, err = cli_in_process(["view", str(sweep_dir)], capsys)
    assert code == 0 and "(unreadable)" in Path(out.strip()).read_text() and "hch: warning: run" in err


def test_a_bad_record_found_only_when_read_is_still_what_each_command_says_of_an_unreadable_trace(
    run: Path, sweep_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(run, run.parent / "ok.json")
    spoil_last_record(run)
    for args in (["ok.json", "t.json"], ["t.json", "ok.json"]):
        done = hch_cli("diff", *args, cwd=run.parent)
        assert done.returncode == 2 and "a workspace's record: status" in done.stderr and not done.stdout, done
    done = hch_cli("replay", "t.json", cwd=run.parent)  # not a replay that "diverges" at a failed node
    assert done.returncode == 1 and not done.stdout and done.stderr.count("\n") == 1, done
    assert "t.json is not a valid hch trace: a workspace's record: status" in done.stderr
    spoil_last_record(next(sweep_dir.rglob("depth-1.json")))
    code, out, err = cli_in_process(["export", str(sweep_dir), "-f", "dot"], capsys)
    assert code == 1 and len(out.splitlines()) == 3 and "1 of 4 runs could not be exported" in err
    code, out, err = cli_in_process(["view", str(sweep_dir)], capsys)
    assert code == 0 and "(unreadable)" in Path(out.strip()).read_text() and "a workspace's record" in err
