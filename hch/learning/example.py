"""A training example for a learned policy X: (question, the instance's facts) -> target answer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from hch.workspace import normalize_question


class Example(BaseModel):
    """One (question, facts) -> answer pair that a learner fits."""

    model_config = ConfigDict(frozen=True)

    question: str
    """The question as asked."""
    context: str
    """The instance's facts (the run's shared context); a learned X reads them."""
    target: str
    """The answer X should give: Amp(X)'s answer (distillation) or the gold answer (supervised)."""
    instance: str | None = None
    """The task instance the question came from, when known."""
    required_depth: int | None = None
    """The depth the question needs, when known: for reports only, never an input of a learner."""


def context_hash(context: str) -> str:
    """A short stable name for an instance's facts."""
    return hashlib.sha256(context.encode()).hexdigest()[:16]


def key(question: str, context: str) -> tuple[str, str]:
    """What identifies an input: the question with whitespace folded, and the facts' hash."""
    return normalize_question(question), context_hash(context)


def canonical(examples: Iterable[Example]) -> list[Example]:
    """The examples in a fixed order (by input, then target), so fitting and hashing ignore order."""
    return sorted(examples, key=lambda e: (*key(e.question, e.context), e.target))


def data_hash(examples: Iterable[Example]) -> str:
    """A hash of the training data (inputs and targets, in canonical order): part of X's fingerprint."""
    digest = hashlib.sha256()
    for example in canonical(examples):
        digest.update(json.dumps([*key(example.question, example.context), example.target]).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]
