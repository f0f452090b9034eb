"""Small policies for tests: behaviour given as a plain function of the workspace."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hch.record.trace import Trace
from hch.workspace import Action, Reply, Workspace

Behaviour = Callable[[Workspace], Awaitable[Action | Reply]]


class FunctionPolicy:
    """A policy whose `act` is an async function; counts calls per question."""

    def __init__(self, behaviour: Behaviour, fingerprint: str = "test") -> None:
        self.behaviour = behaviour
        self.fingerprint = fingerprint
        self.calls: Counter[str] = Counter()

    async def act(self, workspace: Workspace) -> Action | Reply:
        self.calls[workspace.question] += 1
        return await self.behaviour(workspace)


def unforced_guesses(trace: Trace) -> list[str]:
    """Questions whose node guessed although it could still ask: it had no guessed sub-answer to pass
    up, and its last policy call saw depth > 0, steps left and no refusal. Honest H: none."""
    found = []
    for node, data in trace.workspaces():
        if data["status"] != "guess":
            continue
        if any(trace.graph.nodes[child]["status"] == "guess" for child, _ in trace.children(node)):
            continue
        seen = trace.graph.nodes[max(trace.node_calls(node))]["input"]
        if seen["depth"] > 0 and seen["steps_left"] > 0 and seen["refusal"] is None:
            found.append(data["question"])
    return found


def spy_on_renames(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files `hch.files` renames into place from now on (an atomic write's last step)."""
    import os

    from hch import files

    replaced: list[str] = []
    real = os.replace

    def spy(src: str, dst: str | Path) -> None:
        replaced.append(Path(dst).name)
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", spy)
    return replaced


EXIT_STATUSES = (0, 1, 2, 3, 4, 5, 130)
"""The exit statuses the README's table documents."""
RAW_CONTROLS = ("\x1b", "\x07", "\u202e", "\x9b", "\x00")
"""Characters a terminal acts on: never printed raw."""


def cli_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `hch ARGS` in this process: its exit status, stdout and stderr. Whatever happened, the
    status is one the README documents, nothing printed holds a raw control character, and no
    traceback or bare `unexpected <Exception>` shows."""
    from hch.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else (0 if exited.code is None else 1)
    out, err = capsys.readouterr()
    assert code in EXIT_STATUSES, (args, code, err)
    assert "Traceback" not in err and "unexpected" not in err, (args, err)
    assert not any(char in out + err for char in RAW_CONTROLS), (args, out[-300:], err[-300:])
    return code, out, err


def rejected(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """`hch ARGS` refused: a non-zero documented status and one `hch: error:` line; that line."""
    code, out, err = cli_in_process(args, capsys)
    assert code != 0 and err.count("\n") == 1 and err.startswith("hch: error: "), (args, code, out, err)
    return err


def bad_files(folder: Path) -> dict[str, Path]:
    """Files that are no trace, question file or preset, by what they are (every kind of special file)."""
    import os

    made = {
        "missing": folder / "missing.json", "directory": folder / "dir", "fifo": folder / "fifo",
        "dev-zero": Path("/dev/zero"), "empty": folder / "empty.json", "png": folder / "image.json",
        "not-utf8": folder / "latin1.json", "other-json": folder / "other.json", "json-list": folder / "list.json",
        "escape-name": folder / "esc\x1b[31m\x07\u202e.json", "huge": folder / "huge.json",
    }
    made["directory"].mkdir()
    os.mkfifo(made["fifo"])
    made["empty"].write_text("")
    made["png"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    made["not-utf8"].write_bytes(b'{"question": "caf\xe9"}\n')
    made["other-json"].write_text('{"a": 1}\n')
    made["json-list"].write_text("[1, 2, 3]\n")
    with open(made["huge"], "wb") as sparse:  # 3 GiB that take no disk: over every read bound
        sparse.truncate(3 << 30)
    return made
def trace_data(path: Path) -> dict[str, Any]:
    """A trace file as node-link JSON data (`graph`, `nodes`, `edges`; what `hch export --format json`
    writes), whatever its schema: runs write schema 2, one record per line."""
    import json

    from hch.record.format import load, to_data

    data: dict[str, Any] = json.loads(json.dumps(to_data(load(path)), default=str))
    return data


def run_in(argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`hch ARGV` run in this process from `cwd` (no interpreter start-up): exit status, stdout, stderr."""
    from hch.cli import main

    monkeypatch.chdir(cwd)
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


def spoil_last_record(path: Path, kind: str = "workspace", field: str = "status") -> None:
    """Give `field` of the last `kind` line of a trace file an invalid value ("pondering") while the trace's
    structure stays sound: a load keeps that line unread, so only reading the record finds the fault."""
    lines = path.read_bytes().split(b"\n")
    number = max(i for i, line in enumerate(lines) if line.endswith(b'"kind":"%s"}}' % kind.encode()))
    key = b'"%s":' % field.encode()
    lines[number] = lines[number].replace(key, key + b'"pondering","was":', 1)
    path.write_bytes(b"\n".join(lines))
