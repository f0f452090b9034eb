"""A persistent memo of policy calls, so that a rerun repeats no call that had finished.

Keyed on (policy fingerprint, the exact workspace the policy saw). Stored in SQLite in
WAL mode, which lets several processes read and write the same file at once. Each entry keeps the
latency the call had when it was made, so a run served from the cache can still tell how long the
original call (e.g. a person thinking) took.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import time
from pathlib import Path

from hch.workspace import Reply, Workspace

DEFAULT_PATH = Path(".hch/cache.sqlite")

# Instant policies (the experts) make thousands of calls a second: committing each one
# would dominate the run. Slow calls (an LLM, a person) are committed at once, because
# they are the ones worth not repeating after a crash; fast ones are batched, and a batch
# is committed by a timer on the event loop COMMIT_EVERY seconds after its first call (or
# when the loop iteration running then ends), so a crash, even SIGKILL, loses only the
# instant calls of the last few milliseconds. Cost: one commit per 5 ms at most.
SLOW_CALL_SECONDS = 0.005
BATCH_SIZE = 512
COMMIT_EVERY = 0.005


def call_key(fingerprint: str, workspace: Workspace) -> str:
    """The cache key of a policy call: a hash of the policy and everything it saw."""
    payload = fingerprint + "\x00" + workspace.model_dump_json()
    return hashlib.sha256(payload.encode()).hexdigest()


class CallCache:
    """A SQLite-backed map from call keys to the `Reply` the policy gave."""

    def __init__(self, path: str | Path = DEFAULT_PATH) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, fingerprint TEXT, reply TEXT, created REAL,"
            " latency REAL)"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(calls)")}
        if "latency" not in columns:  # a cache file from before latencies were kept
            with contextlib.suppress(sqlite3.OperationalError):  # another process added it meanwhile
                self._db.execute("ALTER TABLE calls ADD COLUMN latency REAL")
        self._pending: dict[str, tuple[str, str, float, float]] = {}
        self._flush_scheduled = False

    def get(self, key: str) -> Reply | None:
        """The recorded reply for `key`, or None."""
        entry = self.entry(key)
        return None if entry is None else entry[0]

    def entry(self, key: str) -> tuple[Reply, float | None] | None:
        """The recorded reply for `key` and the seconds the call took when it was made (None if that was
        not recorded), or None."""
        if key in self._pending:
            pending = self._pending[key]
            return Reply.model_validate_json(pending[1]), pending[3]
        row = self._db.execute("SELECT reply, latency FROM calls WHERE key = ?", (key,)).fetchone()
        return None if row is None else (Reply.model_validate_json(row[0]), row[1])

    def put(self, key: str, fingerprint: str, reply: Reply, latency: float) -> None:
        """Record a reply; slow calls are committed at once, fast ones in batches."""
        self._pending[key] = (fingerprint, reply.model_dump_json(), time.time(), latency)
        if latency >= SLOW_CALL_SECONDS or len(self._pending) >= BATCH_SIZE:
            self.flush()
        elif not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not under asyncio (no timer to set): batched until flush() or close()
                return
            self._flush_scheduled = True
            loop.call_later(COMMIT_EVERY, self._flush_later)

    def _flush_later(self) -> None:
        with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile: close() committed all
            self.flush()

    def flush(self) -> None:
        """Commit every pending reply in one transaction."""
        self._flush_scheduled = False  # a timer still set will find nothing to do
        if not self._pending:
            return
        rows = [(key, *entry) for key, entry in self._pending.items()]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO calls (key, fingerprint, reply, created, latency) VALUES (?, ?, ?, ?, ?)", rows
            )
        self._pending.clear()

    def __len__(self) -> int:
        self.flush()
        row = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Commit what is pending and close the file."""
        self.flush()
        self._db.close()
