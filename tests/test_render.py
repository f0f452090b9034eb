from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

import hch
from hch.cli.render import plain, tree_view


def test_control_characters_are_shown_escaped() -> None:
    assert plain("red \x1b[31mtext\x07") == "red \\x1b[31mtext\\x07"
    assert plain("keep\nnewlines\tand tabs") == "keep\nnewlines\tand tabs"
    assert plain("abcdef", limit=4) == "abc…"


def test_markup_in_content_is_printed_as_text() -> None:
    result = hch.answer_sync("What is the sum of 1, 2?", depth=0)
    result.trace.update_node(result.trace.root, answer="[bold red]not markup[/] \x1b[2J")
    console = Console(record=True, width=200, color_system=None)
    console.print(tree_view(result.trace))
    text = console.export_text()
    assert "[bold red]not markup[/] \\x1b[2J" in text


def test_a_large_tree_is_cut_with_a_count_of_the_rest() -> None:
    result = hch.answer_sync("What is the sum of " + ", ".join(map(str, range(64))) + "?", depth=6)
    console = Console(record=True, width=200, color_system=None)
    console.print(tree_view(result.trace, max_lines=10))
    text = console.export_text()
    assert len(text.splitlines()) == 11
    assert "… 53 more nodes" in text


# -- echoed values are shown escaped, never acted on by the terminal (issue 14, class 7) ------------

TERMINAL_ACTIONS = ["\x1b[2J", "\x07", "\x1b]0;title\x07", "\u202e", "\u2066", "\u200b", "\u2028", "\x85", "\ufeff",
                    "\udcff", "\x9b31m", "\r", "\xad", "\u180e", "\ufff9", "\U000e0041\U000e0042"]


def test_plain_escapes_everything_a_terminal_would_act_on() -> None:
    for bad in TERMINAL_ACTIONS:
        shown = plain(f"a{bad}b")
        assert shown.startswith("a\\") and shown.endswith("b") and bad not in shown, repr(bad)
    assert plain("naïve café ✓ → 中文") == "naïve café ✓ → 中文"
    assert plain("\U000e0041") == "\\U000e0041" and plain("🙂") == "🙂"  # hidden tag text shown; emoji kept


def test_an_error_line_echoes_names_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hch.cli import main

    for bad in TERMINAL_ACTIONS:
        with pytest.raises(SystemExit):
            main(["show", str(tmp_path / f"x{bad}.json")])
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and bad not in err and "no trace file at" in err, repr(err)
