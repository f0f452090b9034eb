"""The memorizing learner: a table X that answers what it was taught and marks guesses elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from hch.learning import Example, LearnedPolicy, TableLearner, make_learner
from hch.learning.table import UNKNOWN, CheckpointError
from hch.run.call_cache import CallCache
from hch.run.engine import answer
from hch.workspace import Workspace

FACTS = "Some task: facts follow.\nab -> cd"
EXAMPLES = [
    Example(question="What is sigma^1(ab)?", context=FACTS, target="cd"),
    Example(question="What is   sigma^2(ab)?", context=FACTS, target="ef"),
    Example(question="What is sigma^2(ab)?", context=FACTS, target="gh"),
    Example(question="What is sigma^2(ab)?", context=FACTS, target="gh"),
]


def test_it_answers_what_it_was_taught_with_the_majority_label() -> None:
    x = TableLearner().fit(EXAMPLES)
    found = x.predict([("What is sigma^1(ab)?", FACTS), ("What is sigma^2(ab)?", FACTS)])
    assert [(p.answer, p.known) for p in found] == [("cd", True), ("gh", True)]


def test_an_unseen_input_gets_a_stable_marked_guess_among_the_answers_it_knows() -> None:
    x = TableLearner().fit(EXAMPLES)
    first = x.predict([("What is sigma^1(ab)?", FACTS + "\nother facts")])[0]
    assert not first.known and first.answer in {"cd", "ef", "gh"}
    assert x.predict([("What is sigma^1(ab)?", FACTS + "\nother facts")])[0] == first
    assert TableLearner().fit([]).predict([("q?", "")])[0].answer == UNKNOWN


def test_the_fingerprint_names_the_learner_and_hashes_the_data_not_its_order() -> None:
    a, b = TableLearner().fit(EXAMPLES), TableLearner().fit(list(reversed(EXAMPLES)))
    assert a.fingerprint == b.fingerprint and a.fingerprint.startswith("learned:table#")
    assert TableLearner().fit(EXAMPLES[:2]).fingerprint != a.fingerprint


def test_a_checkpoint_round_trips_and_a_bad_one_is_one_error(tmp_path: Path) -> None:
    x = TableLearner().fit(EXAMPLES)
    loaded = TableLearner().load(x.save(tmp_path / "x.json"))
    assert loaded.fingerprint == x.fingerprint and loaded.size == 4
    assert loaded.predict([("What is sigma^2(ab)?", FACTS)]) == x.predict([("What is sigma^2(ab)?", FACTS)])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"bad\.json is not a table checkpoint"):
        TableLearner().load(tmp_path / "bad.json")


@pytest.mark.anyio
async def test_x_is_an_ordinary_policy_that_never_asks_and_is_cached(tmp_path: Path) -> None:
    x = TableLearner().fit(EXAMPLES)
    assert x.sees_facts is True and isinstance(x, LearnedPolicy)
    action = await x.act(Workspace(question="What is sigma^1(ab)?", depth=3, context=FACTS))
    assert action.answer == "cd" and not action.guess
    cache = CallCache(tmp_path / "cache.sqlite")
    first = await answer("What is sigma^1(ab)?", depth=2, policy=x, context=FACTS, call_cache=cache)
    again = await answer("What is sigma^1(ab)?", depth=2, policy=x, context=FACTS, call_cache=cache)
    cache.close()
    assert first.answer == again.answer == "cd" and first.summary.nodes == 1
    assert [c["cached"] for _, c in again.trace.calls()] == [True]


def test_learners_by_name() -> None:
    assert make_learner("table").name == "table"
    assert make_learner("mlp", seed=3).name.startswith("mlp(")
    with pytest.raises(Exception, match="unknown learner 'tree'"):
        make_learner("tree")
