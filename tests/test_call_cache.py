from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from hch.run import call_cache, call_index
from hch.run.call_cache import APPLICATION_ID, USER_VERSION, CacheError, CallCache, call_key
from hch.workspace import Answer, Reply, SubAnswer, Workspace


def workspace(question: str = "q", **extra: object) -> Workspace:
    return Workspace(question=question, depth=1, **extra)  # type: ignore[arg-type]


def reply(text: str) -> Reply:
    return Reply(action=Answer(answer=text))


def test_the_key_depends_on_policy_and_everything_the_policy_saw() -> None:
    base = call_key("p", workspace())
    assert call_key("p", workspace()) == base
    assert call_key("other", workspace()) != base
    assert call_key("p", workspace("q2")) != base
    assert call_key("p", workspace(context="facts")) != base
    answered = workspace(steps=((SubAnswer(question="s", answer="1"),),))
    assert call_key("p", answered) != base


def test_a_reply_is_read_back_before_and_after_a_flush(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    cache.put("k", "p", reply("42"), latency=0.0)
    assert cache.get("k") == reply("42")
    cache.flush()
    assert cache.get("k") == reply("42")
    assert cache.get("missing") is None


def test_fast_calls_are_batched_and_slow_calls_committed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = CallCache(path)
    cache.put("fast", "p", reply("1"), latency=0.0)
    cache.put("slow", "p", reply("2"), latency=1.0)  # commits everything pending, the fast call too
    other = sqlite3.connect(path)
    assert {k for (k,) in other.execute("SELECT key FROM calls")} == {"fast", "slow"}
    cache.put("fast2", "p", reply("3"), latency=0.0)
    assert {k for (k,) in other.execute("SELECT key FROM calls")} == {"fast", "slow"}
    cache.close()
    assert {k for (k,) in other.execute("SELECT key FROM calls")} == {"fast", "slow", "fast2"}


def test_replies_persist_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.sqlite"
    first = CallCache(path)
    first.put("k", "p", reply("x"), latency=0.0)
    first.close()
    second = CallCache(path)
    assert second.get("k") == reply("x")
    assert len(second) == 1


def _writer(path: str, prefix: str) -> None:
    cache = CallCache(path)
    for i in range(400):
        cache.put(f"{prefix}{i}", "p", reply(str(i)), latency=1.0 if i % 2 else 0.0)
        assert cache.get(f"{prefix}{i // 2}") == reply(str(i // 2))
    cache.close()


def test_several_processes_may_write_one_file_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    CallCache(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, p)) for p in "abc"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    cache = CallCache(path)
    assert len(cache) == 1200  # and the index, grown by three processes at once, finds each reply
    assert all(cache.get(f"{p}{i}") == reply(str(i)) for p in "abc" for i in range(400))


def test_under_an_event_loop_a_fast_batch_is_committed_by_a_timer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(call_cache, "COMMIT_EVERY", 0.0)  # the timer fires on the next loop iteration
    path = tmp_path / "c.sqlite"
    cache = CallCache(path)
    other = sqlite3.connect(path)

    async def run() -> tuple[set[str], set[str]]:
        cache.put("fast", "p", reply("1"), latency=0.0)
        before = {k for (k,) in other.execute("SELECT key FROM calls")}
        await anyio.sleep(0)
        await anyio.sleep(0)
        return before, {k for (k,) in other.execute("SELECT key FROM calls")}

    before, after = anyio.run(run)
    assert (before, after) == (set(), {"fast"})  # nothing waits for a slow call or a full batch
    cache.close()


def test_a_busy_event_loop_leaves_at_most_one_batch_of_instant_calls_uncommitted(tmp_path: Path) -> None:
    """What the README's durability promise rests on (issue 14, class 9): the timer cannot run while
    the loop is busy, so under load only the batch bound holds: at most BATCH_SIZE - 1 instant calls
    wait uncommitted (a SIGKILL then loses them: free to redo), and a slow call is never among them."""
    path = tmp_path / "c.sqlite"
    cache = CallCache(path)
    other = sqlite3.connect(path)
    waiting_counts: list[int] = []

    async def busy() -> None:  # never yields: the commit timer never gets to run
        for i in range(3 * call_cache.BATCH_SIZE + 100):
            cache.put(f"k{i}", "p", reply(str(i)), latency=0.0)
            waiting = i + 1 - other.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
            waiting_counts.append(waiting)
            assert waiting < call_cache.BATCH_SIZE
        cache.put("slow", "p", reply("s"), latency=call_cache.SLOW_CALL_SECONDS)
        assert other.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 3 * call_cache.BATCH_SIZE + 101

    anyio.run(busy)
    assert max(waiting_counts) == call_cache.BATCH_SIZE - 1
    cache.close()


# -- a file that is not an hch cache is refused and left untouched (issue 14, class 2) --------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _foreign_rollback(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    db.execute("INSERT INTO notes (body) VALUES ('keep me')")
    db.commit()
    db.close()


def _foreign_wal(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE calls (key TEXT PRIMARY KEY, value BLOB)")  # same table name, other columns
    db.commit()
    db.close()


def _foreign_marked(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 1196444237")  # another application's marker
    db.commit()
    db.close()


def _foreign_versioned(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()


def _extra_table(path: Path) -> None:
    """An old (unmarked) hch cache with someone else's table in it is not hch's alone."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE calls (key TEXT PRIMARY KEY, fingerprint TEXT, reply TEXT, created REAL)")
    db.execute("CREATE TABLE other (x)")
    db.commit()
    db.close()


@pytest.mark.parametrize("make", [_foreign_rollback, _foreign_wal, _foreign_marked, _foreign_versioned, _extra_table])
def test_another_applications_database_is_refused_and_left_byte_for_byte(tmp_path: Path, make: Any) -> None:
    path = tmp_path / "app.db"
    make(path)
    db = sqlite3.connect(path)
    mode = db.execute("PRAGMA journal_mode").fetchone()
    db.close()
    before = _snapshot(tmp_path)
    with pytest.raises(CacheError, match="another application") as info:
        CallCache(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert _snapshot(tmp_path) == before  # no WAL switch, no table, no marker, no -wal/-shm file
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == mode


@pytest.mark.parametrize("content", [b"not a database at all" * 50, b"SQLite format 3\x00" + b"\xff" * 200])
def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cache.sqlite"
    path.write_bytes(content)
    with pytest.raises(CacheError, match="not an hch call cache"):
        CallCache(path)
    assert path.read_bytes() == content


def test_a_new_cache_is_marked_and_an_old_unmarked_one_is_adopted(tmp_path: Path) -> None:
    new = tmp_path / "new.sqlite"
    CallCache(new).close()
    db = sqlite3.connect(new)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == USER_VERSION
    old = tmp_path / "old.sqlite"  # as hch wrote caches before the marker
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE calls (key TEXT PRIMARY KEY, fingerprint TEXT, reply TEXT, created REAL)")
    db.execute("INSERT INTO calls VALUES ('k', 'fp', ?, 0)", (Reply(action=Answer(answer="4")).model_dump_json(),))
    db.commit()
    db.close()
    cache = CallCache(old)
    assert cache.get("k") == Reply(action=Answer(answer="4"))
    cache.close()
    assert sqlite3.connect(old).execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    (tmp_path / "empty.sqlite").touch()  # an empty file becomes a cache
    CallCache(tmp_path / "empty.sqlite").close()


def test_a_cache_of_a_newer_hch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    CallCache(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {USER_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(CacheError, match="newer format"):
        CallCache(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_special_files_as_a_cache_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    for path in (tmp_path / "fifo", Path("/dev/null"), Path("/dev/zero")):
        with pytest.raises(CacheError, match="not a regular file"):
            CallCache(path)


def test_the_cli_refuses_a_foreign_cache_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    _foreign_wal(path)
    before = _snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-m", "hch", "ask", "What is the sum of 1, 2?", "--cache", str(path),
                           "--trace", str(tmp_path / "t" / "t.json")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "another application" in done.stderr
    assert _snapshot(tmp_path) == before


def test_fingerprints_and_workspaces_that_are_not_valid_text_still_key_and_store(tmp_path: Path) -> None:
    odd = workspace("caf\udce9?", context="\ud800")
    key = call_key("human:\udcff", odd)
    assert key != call_key("human:\udcfe", odd) and key == call_key("human:\udcff", odd)
    cache = CallCache(tmp_path / "c.sqlite")
    cache.put(key, "human:\udcff", reply("fine"), latency=1.0)
    assert cache.get(key) == reply("fine")
    cache.close()


def test_each_entry_keeps_the_latency_of_the_call_that_made_it(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = CallCache(path)
    cache.put("k", "p", reply("x"), latency=12.5)
    assert cache.entry("k") == (reply("x"), 12.5)
    cache.close()
    assert CallCache(path).entry("k") == (reply("x"), 12.5)


def test_a_cache_file_from_before_latencies_were_kept_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE calls (key TEXT PRIMARY KEY, fingerprint TEXT, reply TEXT, created REAL)")
    old.execute("INSERT INTO calls VALUES (?, ?, ?, ?)", ("k", "p", reply("x").model_dump_json(), 0.0))
    old.commit()
    old.close()
    cache = CallCache(path)
    assert cache.entry("k") == (reply("x"), None)  # not recorded then
    cache.put("k2", "p", reply("y"), latency=1.0)
    assert CallCache(path).entry("k2") == (reply("y"), 1.0)


# -- the index beside the rows (issue 15: a cache's cost per call does not grow with it) -------------


def _filled(path: Path, count: int) -> None:
    cache = CallCache(path)
    for i in range(count):
        cache.put(f"k{i}", "p", reply(str(i)), latency=0.0)
    cache.close()


def _finds_all(path: Path, count: int) -> bool:
    cache = CallCache(path)
    found = all(cache.get(f"k{i}") == reply(str(i)) for i in range(count))
    missing = cache.get("never stored")
    cache.close()
    return found and missing is None


def test_an_index_grows_past_its_first_size_and_finds_every_reply(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    _filled(path, 3000)  # the first index holds 512 keys
    assert call_cache.index_path(path).stat().st_size > 16 * 4096
    assert _finds_all(path, 3000)


def test_a_reader_opened_before_the_index_grew_finds_what_was_stored_after(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    reader = CallCache(path)
    assert reader.get("k2999") is None
    _filled(path, 3000)  # another writer: the index is replaced by larger ones meanwhile
    assert reader.get("k2999") == reply("2999") and reader.get("k0") == reply("0")
    reader.close()


def _spoil_index(path: Path) -> None:
    index = call_cache.index_path(path)
    index.write_bytes(index.read_bytes()[:100])


def _drop_index(path: Path) -> None:
    call_cache.index_path(path).unlink()


def _garbage_index(path: Path) -> None:
    index = call_cache.index_path(path)
    index.write_bytes(os.urandom(index.stat().st_size))


def _another_caches_index(path: Path) -> None:
    other = path.with_name("other.sqlite")
    _filled(other, 10)
    call_cache.index_path(other).replace(call_cache.index_path(path))


@pytest.mark.parametrize("spoil", [_spoil_index, _drop_index, _garbage_index, _another_caches_index])
def test_a_missing_damaged_or_foreign_index_is_rebuilt_from_the_rows(tmp_path: Path, spoil: Any) -> None:
    path = tmp_path / "c.sqlite"
    _filled(path, 700)
    spoil(path)
    assert _finds_all(path, 700)
    assert _finds_all(path, 700)  # and the rebuilt index is sound as it was left


def test_a_slot_that_points_at_another_keys_row_is_only_a_miss(tmp_path: Path) -> None:
    """What a writer that died between indexing and committing leaves: a slot with no row of its key."""
    path = tmp_path / "c.sqlite"
    _filled(path, 3)
    cache = CallCache(path)
    index = cache._readable_index()
    assert index is not None
    index.add("ghost", 1)  # row 1 holds k0
    index.add("ghost", 99)  # no row 99
    assert cache.get("ghost") is None
    cache.put("ghost", "p", reply("boo"), latency=1.0)
    assert cache.get("ghost") == reply("boo") and cache.get("k0") == reply("0")
    cache.close()
    assert _finds_all(path, 3)


def test_a_key_stored_again_is_replaced_in_its_row(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    first = CallCache(path)
    first.put("k", "p", reply("old"), latency=1.0)
    second = CallCache(path)  # another process's view of the same file
    second.put("k", "p", reply("new"), latency=1.0)
    assert first.get("k") == reply("new")
    assert len(first) == 1
    first.close()
    second.close()


def test_a_version_1_cache_is_brought_to_rows_in_order_and_keeps_its_replies(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    db = sqlite3.connect(path)  # as hch 0.x wrote caches before this version: the key was the primary key
    db.execute("CREATE TABLE calls (key TEXT PRIMARY KEY, fingerprint TEXT, reply TEXT, created REAL, latency REAL)")
    db.executemany("INSERT INTO calls VALUES (?, 'p', ?, 0, 2.5)", [(f"k{i}", _json(str(i))) for i in range(5)])
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    cache = CallCache(path)
    assert cache.entry("k3") == (reply("3"), 2.5)
    cache.close()
    assert _finds_all(path, 5)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == USER_VERSION
    names = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert names == {"calls", "cache_id"}  # no B-tree of random keys left


def _json(text: str) -> str:
    return reply(text).model_dump_json()


def test_an_index_path_that_is_a_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    call_cache.index_path(path).mkdir()
    with pytest.raises(CacheError, match=r"index .* not a regular file"):
        CallCache(path)


def test_an_index_the_system_will_not_open_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.sqlite"
    _filled(path, 3)

    def refuse(*args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(call_index.os, "open", refuse)
    with pytest.raises(CacheError, match=r"^cannot open the call cache's index .*c\.sqlite-index: Permission denied$"):
        CallCache(path)


def test_a_full_disk_when_the_index_grows_is_a_one_line_error_and_loses_no_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.sqlite"
    cache = CallCache(path)
    for i in range(400):
        cache.put(f"k{i}", "p", reply(str(i)), latency=0.0)
    cache.flush()

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(call_index.os, "posix_fallocate", full, raising=False)
    for i in range(400, 700):  # past the first index's 512 keys
        cache.put(f"k{i}", "p", reply(str(i)), latency=0.0)
    with pytest.raises(CacheError, match=r"^cannot grow the call cache's index .*: No space left on device$"):
        cache.flush()
    assert cache.get("k650") == reply("650")  # still pending, not lost
    monkeypatch.undo()
    cache.close()
    assert _finds_all(path, 700)
