from __future__ import annotations

from pathlib import Path

import pytest

from hch.errors import QuestionError
from hch.limits import Limits
from hch.serve.desk import Desk
from hch.serve.jobs import Jobs, check_question
from hch.serve.policy import activate
from hch.serve.store import Store


def test_questions_from_outside_are_checked() -> None:
    assert check_question("Q?", 2) == ("Q?", 2)
    for question, depth, says in [("", 1, "empty"), ("  ", 1, "empty"), (None, 1, "empty"), ("Q", -1, "depth"),
                                  ("Q", "2", "depth"), ("Q", True, "depth"), ("Q", 101, "depth"),
                                  ("x" * 20_001, 1, "characters long"), ("a\ud800b", 1, "not valid text")]:
        with pytest.raises(QuestionError, match=says):
            check_question(question, depth)


def test_the_same_ask_is_one_job_and_is_resumed_by_a_new_server(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    desk = Desk(store)
    activate(desk)
    try:
        jobs = Jobs(store, desk, tmp_path, None, {}, Limits())
        first = jobs.ask("Q?", 1, "web")
        assert jobs.ask("Q?", 1, "web") is first
        assert jobs.ask("Q?", 2, "web") is not first
        assert [t["label"] for t in store.trees()] == ["Q?", "Q?"]
        again = Jobs(store, desk, tmp_path, None, {}, Limits())
        assert sorted(job.id for job in again.resume()) == sorted(jobs.jobs)
        store.end_job(first.id, "done", {"line": "ok: 4"})
        assert first.id not in {job.id for job in Jobs(store, desk, tmp_path, None, {}, Limits()).resume()}
    finally:
        activate(None)
