"""Terminal rendering of runs and traces. Text from policies is data: it is never parsed as
markup, and control characters are shown escaped so they cannot drive the terminal."""

from __future__ import annotations

import re

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from hch.record.trace import Trace

CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    r"\ud800-\udfff\U000e0000-\U000e007f]"
)
"""Characters a terminal would act on rather than show: C0/C1 controls (ESC, BEL, ...), bidirectional
overrides and isolates (U+202E ...), zero-width and invisible format characters, line and paragraph
separators, the soft hyphen, interlinear annotations, invisible tag characters (U+E0000-U+E007F, which can
carry hidden text), and lone surrogates (bytes that were not UTF-8)."""
STATUS_STYLE = {"ok": "green", "guess": "yellow", "error": "red", "running": "blue", "interrupted": "magenta"}


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def plain(text: str, limit: int | None = None) -> str:
    """`text` with control characters replaced by visible escapes (and shortened to `limit`)."""
    text = CONTROL.sub(_escape, text)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def node_label(trace: Trace, node: int, reused: bool = False, whole: bool = False) -> Text:
    """One line for a workspace: depth, question, answer, and markers (environment: answered from the
    facts by the task's environment; reused, guess, error, cycle). Long text is cut unless `whole`."""
    data = trace.nodes[node]
    label = Text()
    label.append(f"#{node} ", style="dim")
    label.append(f"n={data['depth']} ", style="cyan")
    if data.get("budget") is not None:  # budgeted HCH: calls spent of those given
        label.append(f"calls={data.get('spent', '?')}/{data['budget']} ", style="cyan")
    label.append(plain(data["question"], None if whole else 100))
    answer = data["answer"]
    label.append(" → ")
    shown = plain(answer if answer is not None else "…", None if whole else 60)
    label.append(shown, style=STATUS_STYLE.get(data["status"], ""))
    markers = []
    if data.get("oracle"):
        markers.append("environment")
    if reused:
        markers.append("reused")
    if data["status"] in ("guess", "error", "interrupted"):
        markers.append(data["status"])
    if data["cycle_of"] is not None:
        markers.append(f"cycle of #{data['cycle_of']}")
    if data["limit"]:
        markers.append(f"limit: {data['limit']}")
    if markers:
        label.append(" [" + ", ".join(markers) + "]", style="dim")
    return label


def tree_view(trace: Trace, max_lines: int = 40, whole: bool = False) -> Tree:
    """A compact tree of the run's workspaces, cut after `max_lines` with a count of the rest; with
    `whole` (output into a file or pipe, for grep), each question and answer is shown uncut."""
    root = trace.root
    tree = Tree(node_label(trace, root, whole=whole))
    shown = 1
    stack = [(tree, root)]
    total = len(list(trace.workspaces()))
    while stack and shown < max_lines:
        branch, node = stack.pop(0)
        for child, edge in trace.children(node):
            if shown >= max_lines:
                break
            reused = edge["kind"] == "reuse"
            sub = branch.add(node_label(trace, child, reused=reused, whole=whole))
            shown += 1
            if not reused:
                stack.append((sub, child))
    hidden = total - shown
    if hidden > 0:
        tree.add(Text(f"… {hidden} more nodes (see the trace file)", style="dim"))
    return tree


def console(stderr: bool = False) -> Console:
    """A rich console for command output: on a terminal as wide as it is; into a file or pipe never
    wrapped (a line per record, so grep and cut see whole lines)."""
    out = Console(highlight=False, stderr=stderr)
    if not out.is_terminal:
        out = Console(highlight=False, stderr=stderr, width=UNWRAPPED, no_color=True)
    return out


UNWRAPPED = 1_000_000
"""Columns of a console that is not a terminal: wide enough that no line of hch's is wrapped."""
