"""The durable state of `hch serve`: participants, jobs, the queue's items, assignments and answers, in SQLite.

Every write is committed before the server acknowledges it (an answer is on disk before the participant's
page is told it was taken, and before the run sees it), so a server killed at any point loses nothing a
participant was told was saved. The database is the server's own (file mode 0600: it holds the links'
tokens); WAL mode with `synchronous=FULL`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hch.errors import HchError
from hch.files import check_writable_target
from hch.serve.tokens import new_token

APPLICATION_ID = 0x68637376  # "hcsv": marks an SQLite file as an hch serve state database
USER_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL,
    created REAL NOT NULL, ended REAL, outcome TEXT);
CREATE TABLE IF NOT EXISTS trees (
    key TEXT PRIMARY KEY, job TEXT NOT NULL, label TEXT NOT NULL, seq INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, tree TEXT NOT NULL, node INTEGER NOT NULL, parent INTEGER, key TEXT NOT NULL,
    workspace TEXT NOT NULL, enqueued REAL NOT NULL, status TEXT NOT NULL, UNIQUE (tree, key));
CREATE TABLE IF NOT EXISTS assignments (
    id INTEGER PRIMARY KEY, item INTEGER NOT NULL, participant TEXT NOT NULL, tree TEXT NOT NULL,
    node INTEGER NOT NULL, shown REAL NOT NULL, deadline REAL, ended REAL, outcome TEXT);
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY, item INTEGER NOT NULL, participant TEXT NOT NULL, reply TEXT NOT NULL,
    answered REAL NOT NULL);
"""


class StoreError(HchError):
    """The state directory or database cannot be used (another application's file, a newer version)."""


@dataclass(frozen=True)
class Participant:
    """Someone with a link: a pseudonymous id (what traces record), the link's token and an optional name."""

    id: str
    """`p1`, `p2`, ...: the only way traces name a participant."""
    token: str
    """The secret in the participant's link."""
    name: str
    """What the experimenter calls them (shown on the experimenter's page only; may be empty)."""


@dataclass
class Item:
    """One policy call waiting for (or answered by) a participant: a workspace of a tree."""

    id: int
    tree: str
    """The run (tree) it belongs to: the run's trace path."""
    node: int
    """Its workspace's id in that tree."""
    parent: int | None
    """The workspace that asked its question (None for a root, or when not known)."""
    key: str
    """The call's key (`hch.run.call_cache.call_key`): the same workspace asked again finds its answer."""
    workspace: dict[str, Any]
    enqueued: float
    """When it was first queued (wall clock, seconds since the epoch)."""
    status: str
    """`waiting`, `answered` or `closed` (its run no longer waits for it)."""


@dataclass
class Assignment:
    """An item shown to a participant: open until answered, passed, expired or withdrawn."""

    id: int
    item: int
    participant: str
    tree: str
    node: int
    shown: float
    deadline: float | None
    ended: float | None = None
    outcome: str | None = None
    """None while open; then `answered`, `expired` (time budget), `left` (their page closed), `passed` or
    `withdrawn` (the run stopped)."""


class Store:
    """The state database of one `hch serve` directory."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        check_writable_target(path, "the state database", StoreError)
        fresh = not path.exists()
        if fresh:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._check()
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            self.db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self.db.execute(f"PRAGMA user_version={USER_VERSION}")
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise StoreError(f"{path} is not a usable hch serve state database: {exc}") from None

    def _check(self) -> None:
        app = self.db.execute("PRAGMA application_id").fetchone()[0]
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app == 0 and tables == 0:
            return
        if app != APPLICATION_ID:
            raise StoreError(f"{self.path} is not an hch serve state database; give another --state directory")
        if version > USER_VERSION:
            raise StoreError(f"{self.path} was written by a newer hch (state version {version}); upgrade hch")

    def close(self) -> None:
        self.db.close()

    # meta

    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def experimenter_token(self) -> str:
        """The experimenter's token, made once per state directory."""
        token = self.setting("experimenter_token")
        if token is None:
            token = new_token()
            self.set_setting("experimenter_token", token)
        return token

    # participants

    def participants(self) -> list[Participant]:
        rows = self.db.execute("SELECT id, token, name FROM participants ORDER BY created, rowid").fetchall()
        return [Participant(*row) for row in rows]

    def add_participant(self, name: str = "") -> Participant:
        number = self.db.execute("SELECT count(*) FROM participants").fetchone()[0] + 1
        participant = Participant(f"p{number}", new_token(), name)
        self.db.execute("INSERT INTO participants (id, token, name, created) VALUES (?, ?, ?, ?)",
                        (participant.id, participant.token, name, time.time()))
        return participant

    # jobs and trees

    def jobs(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, kind, spec, status, created, ended, outcome FROM jobs ORDER BY created")
        return [{"id": r[0], "kind": r[1], "spec": json.loads(r[2]), "status": r[3], "created": r[4], "ended": r[5],
                 "outcome": json.loads(r[6]) if r[6] else None} for r in rows]

    def add_job(self, job: str, kind: str, spec: dict[str, Any]) -> bool:
        """Record a job; False if one with this id is already recorded (the same command given again)."""
        found = self.db.execute("SELECT 1 FROM jobs WHERE id = ?", (job,)).fetchone()
        if found:
            return False
        self.db.execute("INSERT INTO jobs (id, kind, spec, status, created) VALUES (?, ?, ?, 'running', ?)",
                        (job, kind, json.dumps(spec), time.time()))
        return True

    def end_job(self, job: str, status: str, outcome: dict[str, Any]) -> None:
        self.db.execute("UPDATE jobs SET status = ?, ended = ?, outcome = ? WHERE id = ?",
                        (status, time.time(), json.dumps(outcome), job))

    def add_tree(self, key: str, job: str, label: str) -> None:
        """Record a tree (a run's trace path) of a job, once."""
        seq = self.db.execute("SELECT coalesce(max(seq), 0) + 1 FROM trees").fetchone()[0]
        self.db.execute("INSERT OR IGNORE INTO trees (key, job, label, seq) VALUES (?, ?, ?, ?)",
                        (key, job, label, seq))

    def trees(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT key, job, label, seq FROM trees ORDER BY seq").fetchall()
        return [{"key": r[0], "job": r[1], "label": r[2], "seq": r[3]} for r in rows]

    # items, assignments, answers

    def answer_for(self, key: str) -> dict[str, Any] | None:
        """The stored reply of a call with this key, if a participant answered it."""
        row = self.db.execute("SELECT reply FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def queue(self, tree: str, node: int, parent: int | None, key: str, workspace: dict[str, Any]) -> Item:
        """The item of this call, made waiting (a call asked again after a restart finds its old item)."""
        row = self.db.execute("SELECT id, enqueued FROM items WHERE tree = ? AND key = ?", (tree, key)).fetchone()
        if row is None:
            now = time.time()
            cursor = self.db.execute(
                "INSERT INTO items (tree, node, parent, key, workspace, enqueued, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tree, node, parent, key, json.dumps(workspace), now, "waiting"))
            assert cursor.lastrowid is not None
            return Item(cursor.lastrowid, tree, node, parent, key, workspace, now, "waiting")
        self.db.execute("UPDATE items SET status = 'waiting', node = ?, parent = ? WHERE id = ?",
                        (node, parent, row[0]))
        return Item(row[0], tree, node, parent, key, workspace, row[1], "waiting")

    def items(self) -> list[Item]:
        """Every item ever queued, oldest first."""
        rows = self.db.execute("SELECT id, tree, node, parent, key, workspace, enqueued, status FROM items ORDER BY id")
        return [Item(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows.fetchall()]

    def close_item(self, item: int) -> None:
        self.db.execute("UPDATE items SET status = 'closed' WHERE id = ? AND status = 'waiting'", (item,))

    def assign(self, item: Item, participant: str, deadline: float | None) -> Assignment:
        now = time.time()
        cursor = self.db.execute(
            "INSERT INTO assignments (item, participant, tree, node, shown, deadline) VALUES (?, ?, ?, ?, ?, ?)",
            (item.id, participant, item.tree, item.node, now, deadline))
        assert cursor.lastrowid is not None
        return Assignment(cursor.lastrowid, item.id, participant, item.tree, item.node, now, deadline)

    def end_assignment(self, assignment: Assignment, outcome: str) -> None:
        assignment.ended, assignment.outcome = time.time(), outcome
        self.db.execute("UPDATE assignments SET ended = ?, outcome = ? WHERE id = ?",
                        (assignment.ended, outcome, assignment.id))

    def assignments(self, item: int | None = None) -> list[Assignment]:
        """Every assignment (of one item), oldest first: who was shown what, and how it ended."""
        query = "SELECT id, item, participant, tree, node, shown, deadline, ended, outcome FROM assignments"
        rows = self.db.execute(query + (" WHERE item = ?" if item is not None else "") + " ORDER BY id",
                               (item,) if item is not None else ()).fetchall()
        return [Assignment(*row) for row in rows]

    def open_assignments(self) -> list[Assignment]:
        query = ("SELECT id, item, participant, tree, node, shown, deadline, ended, outcome FROM assignments "
                 "WHERE outcome IS NULL ORDER BY id")
        return [Assignment(*row) for row in self.db.execute(query).fetchall()]

    def record_answer(self, item: Item, assignment: Assignment, reply: dict[str, Any]) -> None:
        """Store a participant's reply, mark the item answered and the assignment ended: one transaction."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO answers (key, item, participant, reply, answered) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (item.key, item.id, assignment.participant, json.dumps(reply), now))
            self.db.execute("UPDATE items SET status = 'answered' WHERE id = ?", (item.id,))
            self.db.execute("UPDATE assignments SET ended = ?, outcome = 'answered' WHERE id = ?", (now, assignment.id))
        item.status, assignment.ended, assignment.outcome = "answered", now, "answered"

    def answered_by(self) -> dict[str, int]:
        """How many calls each participant answered."""
        rows = self.db.execute("SELECT participant, count(*) FROM answers GROUP BY participant").fetchall()
        return {row[0]: row[1] for row in rows}
