"""Graders: does an answer match a gold answer? exact (normalized), numeric, regex, contains."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Literal

GraderName = Literal["exact", "numeric", "regex", "contains"]
GRADERS: tuple[GraderName, ...] = ("exact", "numeric", "regex", "contains")
NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
DEFAULT_TOLERANCE = 1e-6


def normalize(text: str) -> str:
    """Case, surrounding whitespace and quotes, inner whitespace runs and a final period folded."""
    text = " ".join(text.split()).casefold().strip("\"'` ")
    text = text[:-1] if text.endswith(".") else text
    return text.strip("\"'` ")


def last_number(text: str) -> float | None:
    """The last number written in `text` ("The answer is 42." -> 42.0), or None."""
    found = NUMBER.findall(text.replace(",", ""))
    return float(found[-1]) if found else None


def exact(answer: str, gold: str, tolerance: float) -> bool:
    return normalize(answer) == normalize(gold)


def numeric(answer: str, gold: str, tolerance: float) -> bool:
    """Equal within `tolerance`, absolute or relative to the gold value, whichever is larger."""
    want, got = last_number(gold), last_number(answer)
    if want is None or got is None:
        return False
    return math.isclose(got, want, rel_tol=tolerance, abs_tol=tolerance)


def regex(answer: str, gold: str, tolerance: float) -> bool:
    """The gold answer is a pattern the whole (stripped) answer must match, case-insensitively."""
    return re.fullmatch(gold, answer.strip(), re.IGNORECASE | re.DOTALL) is not None


def contains(answer: str, gold: str, tolerance: float) -> bool:
    return normalize(gold) in normalize(answer)


CHECKS: dict[str, Callable[[str, str, float], bool]] = {
    "exact": exact, "numeric": numeric, "regex": regex, "contains": contains,
}


def grade(
    answer: str | None, gold: str | None, grader: str = "exact", tolerance: float = DEFAULT_TOLERANCE
) -> bool | None:
    """True/False when there is a gold answer, None when there is none (cost and time only)."""
    if gold is None:
        return None
    if answer is None:
        return False
    return CHECKS[grader](answer, gold, tolerance)


def check_pattern(pattern: str) -> str | None:
    """Why `pattern` is not a valid regular expression, or None."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None
