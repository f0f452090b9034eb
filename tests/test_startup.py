"""What the `hch` command imports before it does anything: a command's module only when that command runs,
and no numerical or plotting library for `--version`, `--help` or `hch show` (hch/cli/__init__.py)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from helpers import cli_in_process, rejected

import hch
from hch.cli import COMMANDS, LazyGroup, app

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "networkx", "matplotlib")
RUN_AND_LIST_MODULES = """
import json, sys
from hch.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""
"""Run `hch ARGV` in a fresh interpreter, then print every module it imported as the last line on stderr."""


def fresh_hch(args: list[str], cwd: Path = ROOT) -> tuple[str, set[str]]:
    """`hch ARGS` run by a new interpreter: its stdout, and the modules imported by the time it ended."""
    out, _, modules = fresh_hch_with_errors(args, cwd)
    return out, modules


def fresh_hch_with_errors(args: list[str], cwd: Path = ROOT) -> tuple[str, str, set[str]]:
    """`hch ARGS` run by a new interpreter: its stdout, stderr, and the modules imported by the time it ended."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-c", RUN_AND_LIST_MODULES, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)
    *errors, modules = done.stderr.splitlines()
    return done.stdout, "".join(line + "\n" for line in errors), set(json.loads(modules))


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_import_no_command_and_no_heavy_library(args: list[str]) -> None:
    out, modules = fresh_hch(args)
    assert out.startswith("hch, version" if args == ["--version"] else "Usage: hch")
    assert not modules & {*HEAVY, *(module for module, _ in COMMANDS.values())}


def test_import_hch_imports_none_of_its_names_until_one_is_used() -> None:
    code = f"import sys, hch; print(sorted(m for m in sys.modules if m.startswith('hch.') or m in {HEAVY!r}))"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert hch.load_trace is importlib.import_module("hch.record.format").load  # and every name still works
    assert all(getattr(hch, name) is not None for name in hch.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        hch.nothing  # noqa: B018


def test_show_imports_no_heavy_library_and_no_engine(tmp_path: Path) -> None:
    hch.answer_sync("What is the sum of 3, 1, 4, 1?", depth=2, trace_path=tmp_path / "t.json")
    out, modules = fresh_hch(["show", str(tmp_path / "t.json")])
    assert "answer: 9" in out
    assert not modules & {*HEAVY, "hch.cli.ask", "hch.experts", "hch.run.engine", "yaml", "sqlite3"}


def test_the_table_of_commands_matches_the_commands_themselves() -> None:
    for module, _ in COMMANDS.values():
        importlib.import_module(module)
    assert set(app.commands) == set(COMMANDS)  # every command is listed, and every listed one exists
    for name, (module, summary) in COMMANDS.items():
        command = app.commands[name]
        assert command.callback is not None and command.callback.__module__ == module
        assert command.help is not None and command.help.partition("\n\n")[0] == summary
        assert command.short_help is None and not command.hidden and not command.deprecated


@pytest.mark.parametrize("width", [40, 80, 120])
def test_help_lists_commands_from_the_table_as_click_does_from_the_commands(width: int) -> None:
    for module, _ in COMMANDS.values():
        importlib.import_module(module)
    unloaded = LazyGroup(name="hch")  # no command imported: every line comes from the table
    listed_lazily, listed_by_click = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
    unloaded.format_commands(click.Context(unloaded), listed_lazily)
    click.Group.format_commands(app, click.Context(app), listed_by_click)
    assert listed_lazily.getvalue() == listed_by_click.getvalue()
    assert all(f"  {name} " in listed_lazily.getvalue() for name in COMMANDS)


def test_hch_help_in_a_fresh_interpreter_is_the_help_with_every_command_loaded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module, _ in COMMANDS.values():
        importlib.import_module(module)
    monkeypatch.setenv("COLUMNS", "80")
    assert cli_in_process(["--help"], capsys)[1] == fresh_hch(["--help"])[0]


def test_a_command_runs_and_shows_its_help_when_only_its_module_is_imported() -> None:
    out, modules = fresh_hch(["diff", "--help"])
    assert out.startswith("Usage: hch diff") and "hch.cli.diff" in modules and "hch.cli.ask" not in modules


def test_a_mistyped_command_is_told_the_closest_command_as_with_every_command_loaded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for module, _ in COMMANDS.values():
        importlib.import_module(module)
    _, err, _ = fresh_hch_with_errors(["sho"])
    assert err == rejected(["sho"], capsys)  # with click 8.4 on: "... Did you mean 'show'? ..."
