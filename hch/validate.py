"""Checks of values where they enter hch: text that must be valid Unicode, names that must be usable."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hch.workspace import Answer, Ask, Expand

MAX_QUESTION_CHARS = 20_000
"""Longest question: a root's, a question file's, and every subquestion a policy asks."""
MAX_ANSWER_CHARS = 1_000_000
"""Longest answer a policy may give (it is copied into its asker's workspace and prompts)."""
MAX_ASK_QUESTIONS = 1_000
"""Most subquestions one ask may hold before it is refused outright (a larger `max_asks` raises it):
over `max_asks` but within this, an ask is refused and the policy may act again."""


def unicode_problem(text: str) -> str | None:
    """Why `text` cannot be written as UTF-8, or None.

    Python turns bytes that are not UTF-8 in command-line arguments, file names and terminal
    input into lone surrogates (U+DC80..U+DCFF); no UTF-8 file can hold them, so they are
    refused where they enter rather than when a trace is written.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        if 0xDC80 <= ord(bad) <= 0xDCFF:  # how Python carries a byte that was not UTF-8
            what = f"the byte 0x{ord(bad) - 0xDC00:02x}, which is not UTF-8"
        else:
            what = f"U+{ord(bad):04X} (a lone surrogate)"
        return f"character {exc.start + 1} is {what}"
    return None


def load_json(text: str) -> Any:
    """`json.loads`, where a number too long for Python to read (over 4,300 digits) is a
    `json.JSONDecodeError` like any other bad JSON, rather than a bare `ValueError`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:
        raise json.JSONDecodeError("a number has more digits than can be read (over 4,300)", text, 0) from None


def valid_text(text: str) -> str:
    """`text` with anything UTF-8 cannot hold (lone surrogates) written as a backslash escape,
    for messages hch composes from outside text (an exception's message) rather than refusing them."""
    return text if unicode_problem(text) is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


def action_problem(action: Ask | Answer | Expand, max_asks: int = 0) -> str | None:
    """Why a policy's action cannot be used at all (too large, or not valid text), or None.

    Sizes are checked first, each before anything is done with the text: an ask of a million
    questions, a 50 MB question or answer ends its node here, before the trace, the cache or a
    prompt holds it.
    """
    if action.kind == "expand":
        texts: list[str] = [action.pointer]
        if len(action.pointer) > MAX_QUESTION_CHARS:
            return f"the pointer is {len(action.pointer):,} characters long; at most {MAX_QUESTION_CHARS:,} are read"
    elif action.kind == "answer":
        texts = [action.answer]
        if len(action.answer) > MAX_ANSWER_CHARS:
            return f"the answer is {len(action.answer):,} characters long; at most {MAX_ANSWER_CHARS:,} are accepted"
    else:
        texts = action.questions
        most = max(MAX_ASK_QUESTIONS, max_asks)
        if len(texts) > most:
            return f"the ask holds {len(texts):,} subquestions; at most {most:,} are accepted"
        for number, question in enumerate(texts, 1):
            if len(question) > MAX_QUESTION_CHARS:
                return (f"subquestion {number} is {len(question):,} characters long; at most "
                        f"{MAX_QUESTION_CHARS:,} are accepted")
    for text in texts:
        if (problem := unicode_problem(text)) is not None:
            return f"it is not valid text: {problem}"
    return None
