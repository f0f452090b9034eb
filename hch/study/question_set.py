"""Question sets: the items a sweep runs, from a task generator or a JSONL file.

One JSON object per line: `question` (required), `answer` (gold, optional), `context`, `id`,
`required_depth`, `grader` (exact, numeric, regex, contains) and `tolerance` (numeric grader).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hch.errors import HchError, read_text
from hch.files import write_atomic
from hch.study.grading import DEFAULT_TOLERANCE, GraderName, check_pattern
from hch.validate import MAX_QUESTION_CHARS, load_json, unicode_problem


class QuestionSetError(HchError):
    """A question file is missing, unreadable or has a malformed line."""


class Item(BaseModel):
    """One question of a set, with what is needed to grade it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = ""
    """Unique within the set; from the file, or `line-N` when the line gives none."""
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    """The question put to the root node."""
    answer: str | None = None
    """The gold answer; without one the question is run for cost and time only."""
    context: str = ""
    """The run's shared context (e.g. a task instance's facts), seen by every node (with facts hidden,
    only its header line; the task's environment answers from the rest)."""
    instance: str | None = None
    """The task instance (set of facts) the question was drawn from; questions of one instance are
    not independent samples, so intervals resample instances. None: the question is its own instance."""
    required_depth: int | None = Field(default=None, ge=0)
    """The depth the question needs, when known (task suites); sweeps report per bucket of it."""
    grader: GraderName = "exact"
    """How an answer is compared with the gold answer."""
    tolerance: float = Field(default=DEFAULT_TOLERANCE, ge=0)
    """Absolute-or-relative tolerance of the numeric grader."""

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is blank")
        return value

    @field_validator("question", "context", "answer", "id")
    @classmethod
    def _valid_text(cls, value: str | None) -> str | None:
        if value is not None and (problem := unicode_problem(value)) is not None:
            raise ValueError(f"not valid text: {problem}")
        return value


def parse_line(text: str, number: int, grader: GraderName | None = None, source: str = "") -> Item:
    """One JSONL line as an `Item`; a problem is a `QuestionSetError` naming the file and line."""
    try:
        return _parse_line(text, number, grader)
    except QuestionSetError as exc:
        raise QuestionSetError(f"{source} {exc}".strip()) from None


def _parse_line(text: str, number: int, grader: GraderName | None) -> Item:
    try:
        raw = load_json(text)
    except json.JSONDecodeError as exc:
        raise QuestionSetError(f"line {number}: not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(raw, dict):
        raise QuestionSetError(f"line {number}: expected a JSON object, got {type(raw).__name__}")
    if isinstance(raw.get("answer"), int | float) and not isinstance(raw.get("answer"), bool):
        raw["answer"] = str(raw["answer"])
    raw.setdefault("id", f"line-{number}")
    if grader is not None:
        raw.setdefault("grader", grader)
    try:
        item = Item.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "line"
        raise QuestionSetError(f"line {number}: {where}: {first['msg'].removeprefix('Value error, ')}") from None
    if item.grader == "regex" and item.answer is not None and (problem := check_pattern(item.answer)):
        raise QuestionSetError(f"line {number}: answer is not a valid regular expression: {problem}")
    return item


def load(path: str | Path, grader: GraderName | None = None) -> list[Item]:
    """Read a JSONL question set; blank lines are skipped, ids must be unique."""
    path = Path(path)
    lines = read_text(path, "question file", QuestionSetError).splitlines()
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item = parse_line(line, number, grader, source=str(path))
        if item.id in seen:
            raise QuestionSetError(f"{path} line {number}: id {item.id!r} already used on line {seen[item.id]}")
        seen[item.id] = number
        items.append(item)
    if not items:
        raise QuestionSetError(f"{path} holds no questions")
    return items


def dump(items: list[Item], path: str | Path) -> None:
    """Write items as JSONL (e.g. to save a generated task suite)."""
    text = "".join(item.model_dump_json(exclude_defaults=False) + "\n" for item in items)
    write_atomic(path, text)
