"""The memorizing learner (ALBA's memoizer): X answers an input it was trained on with its label.

Dependency-free. An input is the question (whitespace folded) and the hash of the instance's
facts; conflicting labels for one input are settled by majority (ties: the smallest). An input
never seen gets a marked guess: one of the answers seen in training, chosen by a hash of the input
(so the same guess every time), or `unknown` when nothing was trained on.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from hch.errors import HchError
from hch.experts.base import rng_for
from hch.files import read_text as read_file
from hch.files import write_atomic
from hch.learning.example import Example, canonical, data_hash, key
from hch.learning.learner import LearnedPolicy, Prediction

UNKNOWN = "unknown"
"""X_0's answer: a table fitted on nothing knows nothing."""


class CheckpointError(HchError):
    """A checkpoint file is missing, unreadable or not what the learner wrote."""


class TableModel:
    """A map from (question, facts hash) to the answer."""

    def __init__(self, entries: dict[tuple[str, str], str]) -> None:
        self.entries = entries
        self.answers = sorted(set(entries.values()))

    def predict(self, inputs: Sequence[tuple[str, str]]) -> list[Prediction]:
        return [self._one(question, context) for question, context in inputs]

    def _one(self, question: str, context: str) -> Prediction:
        found = self.entries.get(key(question, context))
        if found is not None:
            return Prediction(found, known=True)
        if not self.answers:
            return Prediction(UNKNOWN, known=False)
        return Prediction(rng_for("table-guess", *key(question, context)).choice(self.answers), known=False)

    def save(self, path: Path, header: dict[str, object]) -> None:
        rows = [[q, c, a] for (q, c), a in sorted(self.entries.items())]
        write_atomic(path, json.dumps({"format": "hch-table", **header, "entries": rows}))


class TableLearner:
    """Fits by memorizing every (question, facts) -> target pair."""

    name = "table"
    suffix = ".json"

    def fit(self, examples: Sequence[Example]) -> LearnedPolicy:
        votes: dict[tuple[str, str], Counter[str]] = {}
        for example in canonical(examples):
            votes.setdefault(key(example.question, example.context), Counter())[example.target] += 1
        entries = {k: min(c.items(), key=lambda item: (-item[1], item[0]))[0] for k, c in votes.items()}
        return LearnedPolicy(TableModel(entries), self.name, data_hash(examples), len(examples))

    def load(self, path: Path) -> LearnedPolicy:
        try:
            data = json.loads(read_file(path, "table checkpoint", CheckpointError))
            if data.get("format") != "hch-table":
                raise ValueError("not a table checkpoint")
            entries = {(str(q), str(c)): str(a) for q, c, a in data["entries"]}
            return LearnedPolicy(TableModel(entries), str(data["learner"]), str(data["data"]), int(data["size"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path} is not a table checkpoint ({type(exc).__name__}: {exc})") from None
