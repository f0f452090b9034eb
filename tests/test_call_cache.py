from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import anyio
import pytest

from hch.run import call_cache
from hch.run.call_cache import CallCache, call_key
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
    for i in range(200):
        cache.put(f"{prefix}{i}", "p", reply(str(i)), latency=1.0)
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
    assert len(CallCache(path)) == 600


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
