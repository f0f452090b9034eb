from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from hch.serve.store import Store, StoreError


def test_the_state_survives_reopening_and_only_its_owner_may_read_it(tmp_path: Path) -> None:
    path = tmp_path / "state" / "serve.sqlite"
    store = Store(path)
    token = store.experimenter_token()
    alice = store.add_participant("alice")
    store.add_participant()
    item = store.queue("tree", 3, 1, "key", {"question": "q", "depth": 0})
    assignment = store.assign(item, alice.id, None)
    store.record_answer(item, assignment, {"action": {"kind": "answer", "answer": "4"}})
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the links' tokens
    again = Store(path)
    assert again.experimenter_token() == token
    assert [(p.id, p.name) for p in again.participants()] == [("p1", "alice"), ("p2", "")]
    assert again.answer_for("key") == {"action": {"kind": "answer", "answer": "4"}}
    assert [a.outcome for a in again.assignments()] == ["answered"]
    assert again.answered_by() == {"p1": 1}
    requeued = again.queue("tree", 3, 1, "key", {"question": "q", "depth": 0})
    assert requeued.id == item.id  # the same call asked again finds its item (and its history)


def test_jobs_are_recorded_once_by_id(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    assert store.add_job("a-1", "ask", {"question": "q"})
    assert not store.add_job("a-1", "ask", {"question": "q"})
    store.end_job("a-1", "done", {"line": "ok: 4"})
    assert [(j["id"], j["status"], j["outcome"]) for j in store.jobs()] == [("a-1", "done", {"line": "ok: 4"})]
    store.add_tree("t.json", "a-1", "q")
    store.add_tree("t.json", "a-1", "q")
    assert [t["seq"] for t in store.trees()] == [1]


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not an hch serve state database"):
        Store(path)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError):
        Store(tmp_path / "junk.sqlite")
