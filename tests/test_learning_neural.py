"""The MLP learner (scikit-learn): fit and predict on a tiny set, checkpoints, degenerate data."""

from __future__ import annotations

from pathlib import Path

import pytest

from hch.learning import Example, MLPLearner
from hch.learning.features import encoder_for
from hch.learning.table import UNKNOWN, CheckpointError
from hch.tasks import get_task

pytest.importorskip("sklearn")


def examples(count: int) -> list[Example]:
    items = get_task("wildcard-search").generate(count, 2, max_depth=1)
    return [Example(question=i.question, context=i.context, target=i.answer or "") for i in items]


def test_it_fits_a_tiny_training_set_and_answers_every_input() -> None:
    data = examples(24)
    x = MLPLearner(hidden=64, epochs=400, seed=1).fit(data)
    found = x.predict([(e.question, e.context) for e in data])
    assert all(p.known for p in found)
    assert sum(p.answer == e.target for p, e in zip(found, data, strict=True)) >= 20  # it can memorize 24 inputs
    assert x.fingerprint.startswith("learned:mlp(hidden=64,epochs=400") and x.sees_facts


def test_a_checkpoint_round_trips(tmp_path: Path) -> None:
    data = examples(12)
    x = MLPLearner(hidden=8, epochs=20).fit(data)
    loaded = MLPLearner(hidden=8, epochs=20).load(x.save(tmp_path / "x.joblib"))
    inputs = [(e.question, e.context) for e in data]
    assert loaded.predict(inputs) == x.predict(inputs) and loaded.fingerprint == x.fingerprint
    (tmp_path / "bad.joblib").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match=r"bad\.joblib is not an mlp checkpoint"):
        MLPLearner().load(tmp_path / "bad.joblib")


def test_no_data_guesses_and_one_answer_is_a_constant() -> None:
    empty = MLPLearner().fit([])
    assert empty.predict([("q?", "")])[0].answer == UNKNOWN and not empty.predict([("q?", "")])[0].known
    same = [e.model_copy(update={"target": "3"}) for e in examples(4)]
    assert [p.answer for p in MLPLearner().fit(same).predict([("anything?", same[0].context)])] == ["3"]


def test_encoders_read_question_and_facts_per_task() -> None:
    wildcard = get_task("wildcard-search").generate(1, 1)[0]
    permutation = get_task("permutation-powering").generate(1, 1)[0]
    union = get_task("union-find").generate(1, 1)[0]
    assert encoder_for(wildcard.context).name.startswith("wildcard-search")
    assert encoder_for(permutation.context).name.startswith("permutation-powering")
    assert encoder_for(union.context).name.startswith("generic")
    encoder = encoder_for(permutation.context)
    vector = encoder.encode(permutation.question, permutation.context)
    assert vector.shape == (encoder.width,) and vector[-64 * 64 :].sum() == 64  # sigma as a one-hot table
