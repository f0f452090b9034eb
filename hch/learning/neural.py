"""The neural learner (`mlp`): scikit-learn's MLPClassifier over encoded (question, facts) inputs.

An optional extra (`pip install -e '.[train]'`): CPU only, small, no PyTorch. Each answer seen in
training is a class; the encoder (`hch.learning.features`) is chosen by the task's header. A round
trains in seconds to minutes on 2 cores at the sizes of the committed study. Checkpoints are
joblib files holding the estimator, its encoder's name and the data hash.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hch.errors import HchError
from hch.files import write_with
from hch.learning.example import Example, canonical, data_hash
from hch.learning.features import Encoder, by_name, encoder_for, matrix
from hch.learning.learner import LearnedPolicy, Prediction
from hch.learning.table import UNKNOWN, CheckpointError


class MissingExtra(HchError):
    """The neural learner's dependencies are not installed."""


def _sklearn() -> Any:
    try:
        import joblib  # type: ignore[import-untyped]
        from sklearn.neural_network import MLPClassifier  # type: ignore[import-untyped]
    except ImportError:
        raise MissingExtra("the mlp learner needs scikit-learn: pip install -e '.[train]'") from None
    return MLPClassifier, joblib


class MLPModel:
    """An estimator and its encoder; without an estimator (no data, or one class) a constant."""

    def __init__(self, encoder: Encoder, estimator: Any, constant: str | None) -> None:
        self.encoder, self.estimator, self.constant = encoder, estimator, constant

    def predict(self, inputs: Sequence[tuple[str, str]]) -> list[Prediction]:
        if self.estimator is None:
            answer = self.constant if self.constant is not None else UNKNOWN
            return [Prediction(answer, known=self.constant is not None) for _ in inputs]
        labels = self.estimator.predict(matrix(self.encoder, list(inputs)))
        return [Prediction(str(label), known=True) for label in labels]

    def save(self, path: Path, header: dict[str, object]) -> None:
        _, joblib = _sklearn()
        state = {"format": "hch-mlp", **header, "encoder": self.encoder.name, "estimator": self.estimator,
                 "constant": self.constant}
        write_with(path, lambda tmp: joblib.dump(state, tmp))


class MLPLearner:
    """One hidden layer of `hidden` ReLU units, Adam, `epochs` passes, seeded."""

    suffix = ".joblib"

    def __init__(self, hidden: int = 128, epochs: int = 40, seed: int = 0, alpha: float = 1e-4) -> None:
        self.hidden, self.epochs, self.seed, self.alpha = hidden, epochs, seed, alpha
        _sklearn()  # fail early without the extra, and keep the import out of the first fit's time

    @property
    def name(self) -> str:
        return f"mlp(hidden={self.hidden},epochs={self.epochs},alpha={self.alpha:g},seed={self.seed})"

    def fit(self, examples: Sequence[Example]) -> LearnedPolicy:
        MLPClassifier, _ = _sklearn()
        ordered = canonical(examples)
        encoder = encoder_for(ordered[0].context) if ordered else encoder_for("")
        targets = sorted({e.target for e in ordered})
        estimator, constant = None, (targets[0] if len(targets) == 1 else None)
        if len(targets) > 1:
            estimator = MLPClassifier(
                hidden_layer_sizes=(self.hidden,), max_iter=self.epochs, alpha=self.alpha,
                random_state=self.seed, batch_size=min(200, len(ordered)),
            )
            with warnings.catch_warnings():  # a fixed number of passes is the budget, not a failure
                warnings.simplefilter("ignore")
                estimator.fit(matrix(encoder, [(e.question, e.context) for e in ordered]), [e.target for e in ordered])
        model = MLPModel(encoder, estimator, constant)
        return LearnedPolicy(model, self.name, data_hash(examples), len(examples))

    def load(self, path: Path) -> LearnedPolicy:
        _, joblib = _sklearn()
        try:
            data = joblib.load(path)
            if not isinstance(data, dict) or data.get("format") != "hch-mlp":
                raise ValueError("not an mlp checkpoint")
            model = MLPModel(by_name(str(data["encoder"])), data["estimator"], data["constant"])
            return LearnedPolicy(model, str(data["learner"]), str(data["data"]), int(data["size"]))
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            raise CheckpointError(f"{path} is not an mlp checkpoint ({type(exc).__name__}: {exc})") from None
