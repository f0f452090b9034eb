"""The learner protocol, and `LearnedPolicy`: a fitted model X as an ordinary policy.

A learner fits examples ((question, facts) -> target) and returns a `LearnedPolicy`. X answers
every workspace at once (it never asks), reads the instance's facts (`sees_facts = True`, as the
2018 paper's X does, even when the facts are hidden from H), and has a fingerprint that names the
learner and hashes its training data, so the call cache, replay and traces treat it like any
other policy. Where the model does not know an input (a table that never saw it) its answer is a
marked guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from hch.learning.example import Example
from hch.workspace import Answer, Workspace


@dataclass(frozen=True)
class Prediction:
    """A model's answer to one input."""

    answer: str
    known: bool
    """False when the model has nothing to go on and its answer is a guess."""


@runtime_checkable
class Model(Protocol):
    """What a learner fits: a batch predictor over (question, facts) pairs, savable as a checkpoint."""

    def predict(self, inputs: Sequence[tuple[str, str]]) -> list[Prediction]:
        """One prediction per (question, context) pair."""
        ...

    def save(self, path: Path, header: dict[str, object]) -> None:
        """Write a checkpoint (with `header`: learner, data hash, size) that the learner's `load` reads."""
        ...


class LearnedPolicy:
    """X: a fitted model acting as a policy. It answers at once, never asks."""

    sees_facts = True
    """X reads the instance's facts even where they are hidden from H (the paper's X does)."""

    def __init__(self, model: Model, learner: str, data: str, size: int) -> None:
        self.model, self.learner, self.data, self.size = model, learner, data, size

    @property
    def fingerprint(self) -> str:
        """The learner (with its settings) and a hash of the training data."""
        return f"learned:{self.learner}#{self.data}"

    def predict(self, inputs: Sequence[tuple[str, str]]) -> list[Prediction]:
        return self.model.predict(inputs)

    def save(self, path: Path) -> Path:
        """Write X's checkpoint (atomically: a crash leaves the old file or none)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        self.model.save(partial, {"learner": self.learner, "data": self.data, "size": self.size})
        partial.replace(path)
        return path

    async def act(self, workspace: Workspace) -> Answer:
        prediction = self.model.predict([(workspace.question, workspace.context)])[0]
        return Answer(answer=prediction.answer, guess=not prediction.known)

    def __repr__(self) -> str:
        return f"LearnedPolicy({self.fingerprint!r}, {self.size} examples)"


@runtime_checkable
class Learner(Protocol):
    """Fits examples into a policy X, and reads X back from a checkpoint."""

    @property
    def name(self) -> str:
        """The learner and its settings, e.g. `table` or `mlp(hidden=256,...)`: part of X's fingerprint."""
        ...

    @property
    def suffix(self) -> str:
        """The file suffix of its checkpoints (`.json`, `.joblib`)."""
        ...

    def fit(self, examples: Sequence[Example]) -> LearnedPolicy:
        """X fitted on `examples` (their order does not matter)."""
        ...

    def load(self, path: Path) -> LearnedPolicy:
        """X read back from a checkpoint that `LearnedPolicy.save` wrote."""
        ...

