"""A persistent memo of policy calls, so that a rerun repeats no call that had finished.

Keyed on (policy fingerprint, the exact workspace the policy saw). The replies are rows of an SQLite
file in WAL mode, which lets several processes read and write it at once; they are found through a hash
index beside it (`<file>-index`, `hch.run.call_index`), so storing a call costs the same in a cache of
a thousand calls as in one of millions. Each entry keeps the latency the call had when it was made, so a
run served from the cache can still tell how long the original call (e.g. a person thinking) took.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from hch.errors import HchError
from hch.files import check_writable_target
from hch.run.call_index import CallIndex
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
USER_VERSION = 2  # 1: the key was the primary key (a B-tree of random keys); 2: rows in order, and an index file
_COLUMNS = ["key", "fingerprint", "reply", "created"]  # and "latency", added later
_TABLE = "(key TEXT NOT NULL, fingerprint TEXT, reply TEXT, created REAL, latency REAL)"


class CacheError(HchError):
    """The file given as a call cache is not one hch may use (another application's database, ...)."""


def check_file(path: Path) -> None:
    """Refuse a path that is not a regular file (a FIFO or device would hang or corrupt SQLite)."""
    check_writable_target(path, "the call cache", CacheError)
    check_writable_target(index_path(path), "the call cache's index", CacheError)


def index_path(path: Path) -> Path:
    """Where the index of the cache at `path` is kept."""
    return path.with_name(path.name + "-index")


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
    """A map from call keys to the `Reply` the policy gave: rows in SQLite, found through `CallIndex`."""

    def __init__(self, path: str | Path = DEFAULT_PATH) -> None:
        self.path = Path(path)
        check_file(self.path)  # before the folder is made: one that is a file is refused by name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise CacheError(f"cannot open the call cache {self.path}: {exc}") from None
        self._index: CallIndex | None = None
        try:
            self._cache_id = self._adopt()
            self._index = CallIndex.open(index_path(self.path), self._cache_id)
            if self._index is None:
                self._rebuild_index()
        except OSError as exc:
            self._db.close()
            problem = exc.strerror or exc
            raise CacheError(f"cannot open the call cache's index {index_path(self.path)}: {problem}") from None
        except BaseException:
            self._db.close()
            raise
        self._pending: dict[str, tuple[str, str, float, float]] = {}
        self._flush_scheduled = False

    def _adopt(self) -> bytes:
        """Check the file is an hch call cache (or empty) before changing anything, then set it up; its id.

        A database of another application is refused and left exactly as it was: no WAL switch,
        no table, no marker. A new cache is marked with hch's `application_id` and `user_version`,
        and one of an older version is brought to this one.
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
            cache_id = _set_up(self._db)
            self._db.execute("COMMIT")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            return cache_id
        except sqlite3.DatabaseError as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise CacheError(f"{self.path} is not an hch call cache (SQLite says: {exc})") from None

    def _rebuild_index(self) -> None:
        """Make a new index of every row (the old one is missing, damaged or another cache's)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._writable_index()

    def _readable_index(self) -> CallIndex | None:
        """The index as it is now; None while there is none to read (the next flush makes one)."""
        if self._index is None or self._index.superseded:
            if self._index is not None:
                self._index.close()
            self._index = CallIndex.open(index_path(self.path), self._cache_id)
        return self._index

    def _writable_index(self) -> CallIndex:
        """The index with a slot for every row (under the write lock): rows another process stored but
        did not index, or every row for a new index, are indexed first."""
        index = self._readable_index()
        if index is None:
            index = CallIndex.create(index_path(self.path), self._cache_id)
            index.publish()
        after = (index.indexed_upto,)
        count, last = self._db.execute("SELECT COUNT(*), MAX(rowid) FROM calls WHERE rowid > ?", after).fetchone()
        if not count:
            return index
        index = self._with_room(index, count)
        for row, key in self._db.execute("SELECT rowid, key FROM calls WHERE rowid > ?", after):
            if self._row_of(index, key) != row:
                index.add(key, row)
        index.mark_indexed(last)
        return index

    def _with_room(self, index: CallIndex, more: int) -> CallIndex:
        if not index.has_room(more):
            try:
                index = index.grown(more)
            except OSError as exc:
                raise CacheError(f"cannot grow the call cache's index {index.path}: {exc.strerror or exc}") from None
        self._index = index
        return index

    def _stored(self, index: CallIndex, key: str) -> tuple[int, str, float | None] | None:
        """The row holding `key` (its full key checked), its reply's JSON and its latency; or None."""
        for row in index.rows(key):
            found = self._db.execute("SELECT key, reply, latency FROM calls WHERE rowid = ?", (row,)).fetchone()
            if found is not None and found[0] == key:
                return row, found[1], found[2]
        return None

    def _row_of(self, index: CallIndex, key: str) -> int | None:
        stored = self._stored(index, key)
        return None if stored is None else stored[0]

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
        index = self._readable_index()
        if index is None:
            return None
        stored = self._stored(index, key)
        return None if stored is None else (_load(stored[1]), stored[2])

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
        """Commit every pending reply in one transaction: a key already stored is replaced in its row,
        a new one appended in a new row and indexed."""
        self._flush_scheduled = False  # a timer still set will find nothing to do
        if not self._pending:
            return
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            index = self._writable_index()
            new, changed, upto = [], [], index.indexed_upto
            for key, (fingerprint, reply, created, latency) in self._pending.items():
                row = self._row_of(index, key)
                if row is None:
                    upto += 1
                    new.append((upto, key, fingerprint, reply, created, latency))
                else:
                    changed.append((fingerprint, reply, created, latency, row))
            self._db.executemany(
                "INSERT INTO calls (rowid, key, fingerprint, reply, created, latency) VALUES (?, ?, ?, ?, ?, ?)", new
            )
            self._db.executemany(
                "UPDATE calls SET fingerprint = ?, reply = ?, created = ?, latency = ? WHERE rowid = ?", changed
            )
            index = self._with_room(index, len(new))  # before the rows are committed: a full disk stops both
            for row, key, *_ in new:
                index.add(key, row)
            index.mark_indexed(upto)
        self._pending.clear()

    def __len__(self) -> int:
        self.flush()
        row = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Commit what is pending and close the files."""
        try:
            self.flush()
        finally:
            if self._index is not None:
                self._index.close()
            self._db.close()


def _set_up(db: sqlite3.Connection) -> bytes:
    """Make the tables of a new cache or bring an older one to this version (in the caller's
    transaction); the cache's id, which its index carries."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    if "calls" not in tables:
        db.execute(f"CREATE TABLE calls {_TABLE}")
    elif "sqlite_autoindex_calls_1" in tables:
        _from_version_1(db)
    if "cache_id" not in tables:
        db.execute("CREATE TABLE cache_id (id BLOB NOT NULL)")
        db.execute("INSERT INTO cache_id VALUES (?)", (os.urandom(16),))
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {USER_VERSION}")
    return bytes(db.execute("SELECT id FROM cache_id").fetchone()[0])


def _from_version_1(db: sqlite3.Connection) -> None:
    """Copy a version-1 table (the key its primary key: a B-tree of random keys, which made every insert
    rewrite a page once it outgrew memory) into rows in their order, indexed by `CallIndex` instead."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(calls)")}
    latency = "latency" if "latency" in columns else "NULL"  # a cache file from before latencies were kept
    db.execute(f"CREATE TABLE calls_in_order {_TABLE}")
    db.execute(
        "INSERT INTO calls_in_order (key, fingerprint, reply, created, latency)"
        f" SELECT key, fingerprint, reply, created, {latency} FROM calls ORDER BY rowid"
    )
    db.execute("DROP TABLE calls")
    db.execute("ALTER TABLE calls_in_order RENAME TO calls")
