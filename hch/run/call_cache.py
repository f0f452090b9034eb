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
import json
import sqlite3
import time
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from hch.errors import HchError
from hch.files import check_writable_target
from hch.validate import valid_text
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


APPLICATION_ID = 0x68636863  # "hchc": marks an SQLite file as an hch call cache
USER_VERSION = 1
_COLUMNS = ["key", "fingerprint", "reply", "created"]  # and "latency", added later


class CacheError(HchError):
    """The file given as a call cache is not one hch may use (another application's database, ...)."""


def check_file(path: Path) -> None:
    """Refuse a path that is not a regular file (a FIFO or device would hang or corrupt SQLite)."""
    check_writable_target(path, "the call cache", CacheError)


def _ownership(db: sqlite3.Connection) -> str | int:
    """`ours` (an hch cache, or an empty file to make one), `foreign`, or a newer version number."""
    app = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
    if app == APPLICATION_ID:
        return version if version > USER_VERSION else "ours"
    if app != 0 or version != 0:
        return "foreign"
    if not tables:
        return "ours"  # an empty database: a new cache
    columns = [row[1] for row in db.execute("PRAGMA table_info(calls)")]
    known = columns in (_COLUMNS, [*_COLUMNS, "latency"])
    return "ours" if tables == ["calls", "sqlite_autoindex_calls_1"] and known else "foreign"


def _dump(reply: Reply) -> str:
    """A reply as JSON; raw text that is not valid Unicode (a lone surrogate a server sent) is escaped."""
    try:
        return reply.model_dump_json()
    except PydanticSerializationError:
        return json.dumps(reply.model_dump(mode="json"))


def _load(text: str) -> Reply:
    try:
        return Reply.model_validate_json(text)
    except ValidationError:  # pydantic's JSON parser refuses escaped lone surrogates; the json module reads them
        return Reply.model_validate(json.loads(text))


def call_key(fingerprint: str, workspace: Workspace) -> str:
    """The cache key of a policy call: a hash of the policy and everything it saw."""
    try:
        seen = workspace.model_dump_json()
    except PydanticSerializationError:  # a lone surrogate in text from outside: hashed escaped
        seen = json.dumps(workspace.model_dump(mode="json"))
    payload = fingerprint + "\x00" + seen
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class CallCache:
    """A SQLite-backed map from call keys to the `Reply` the policy gave."""

    def __init__(self, path: str | Path = DEFAULT_PATH) -> None:
        self.path = Path(path)
        check_file(self.path)  # before the folder is made: one that is a file is refused by name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise CacheError(f"cannot open the call cache {self.path}: {exc}") from None
        try:
            self._adopt()
        except BaseException:
            self._db.close()
            raise
        self._pending: dict[str, tuple[str, str, float, float]] = {}
        self._flush_scheduled = False

    def _adopt(self) -> None:
        """Check the file is an hch call cache (or empty) before changing anything, then set it up.

        A database of another application is refused and left exactly as it was: no WAL switch,
        no table, no marker. A new cache is marked with hch's `application_id` and `user_version`.
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")  # one process at a time decides and marks
            state = _ownership(self._db)
            if state == "foreign":
                self._db.execute("ROLLBACK")
                raise CacheError(
                    f"{self.path} is an SQLite database of another application, not an hch call cache; "
                    "it was left untouched: give --cache a new file or an hch cache"
                )
            if isinstance(state, int):
                self._db.execute("ROLLBACK")
                raise CacheError(
                    f"{self.path} is an hch call cache of a newer format (version {state}; this hch reads "
                    f"version {USER_VERSION}): upgrade hch or give --cache another file"
                )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, fingerprint TEXT, reply TEXT, created REAL,"
                " latency REAL)"
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(calls)")}
            if "latency" not in columns:  # a cache file from before latencies were kept
                self._db.execute("ALTER TABLE calls ADD COLUMN latency REAL")
            self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._db.execute(f"PRAGMA user_version = {USER_VERSION}")
            self._db.execute("COMMIT")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise CacheError(f"{self.path} is not an hch call cache (SQLite says: {exc})") from None

    def get(self, key: str) -> Reply | None:
        """The recorded reply for `key`, or None."""
        entry = self.entry(key)
        return None if entry is None else entry[0]

    def entry(self, key: str) -> tuple[Reply, float | None] | None:
        """The recorded reply for `key` and the seconds the call took when it was made (None if that was
        not recorded), or None."""
        if key in self._pending:
            pending = self._pending[key]
            return _load(pending[1]), pending[3]
        row = self._db.execute("SELECT reply, latency FROM calls WHERE key = ?", (key,)).fetchone()
        return None if row is None else (_load(row[0]), row[1])

    def put(self, key: str, fingerprint: str, reply: Reply, latency: float) -> None:
        """Record a reply; slow calls are committed at once, fast ones in batches."""
        self._pending[key] = (valid_text(fingerprint), _dump(reply), time.time(), latency)
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
