"""The learning layer: training data from traces, learned policies X, and the IDA loop.

- `example`: a training example ((question, facts) -> target) and its hashing.
- `learner`: the learner protocol and `LearnedPolicy` (X as an ordinary policy).
- `table`: the memorizing learner; `neural` (+ `features`): the MLP learner (extra `train`).
- `distill`: distillation pairs and chat imitation data from traces, journals and sweeps.
- `questions`, `ida`, `report`: the iterated-amplification loop and its figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hch.errors import HchError
from hch.learning.example import Example, data_hash
from hch.learning.learner import LearnedPolicy, Learner, Model, Prediction
from hch.learning.table import TableLearner

if TYPE_CHECKING:
    from hch.learning.neural import MLPLearner

LEARNERS = ("table", "mlp")


def __getattr__(name: str) -> Any:
    if name == "MLPLearner":  # numpy is imported only when the neural learner is wanted
        from hch.learning.neural import MLPLearner

        return MLPLearner
    raise AttributeError(name)


def make_learner(name: str, seed: int = 0) -> Learner:
    """The built-in learner called `name` (`table` or `mlp`)."""
    if name == "table":
        return TableLearner()
    if name == "mlp":
        from hch.learning.neural import MLPLearner

        return MLPLearner(seed=seed)
    raise HchError(f"unknown learner {name!r}; learners: {', '.join(LEARNERS)}")


__all__ = [
    "LEARNERS", "Example", "LearnedPolicy", "Learner", "MLPLearner", "Model", "Prediction", "TableLearner",
    "data_hash", "make_learner",
]
