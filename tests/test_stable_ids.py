from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from helpers import FunctionPolicy, spoil_last_record

import hch
from hch.record.stable_ids import places, previous_ids
from hch.run.call_cache import CallCache
from hch.workspace import Answer, Ask, Workspace

pytestmark = pytest.mark.anyio


def ids(trace: hch.Trace) -> dict[str, int]:
    return {data["question"]: node for node, data in trace.workspaces()}


async def test_a_resumed_session_gives_each_workspace_the_id_it_had_before(tmp_path: Path) -> None:
    block, b1_started = True, anyio.Event()

    async def behaviour(ws: Workspace) -> Ask | Answer:
        if ws.question == "root":
            return Ask(questions=["a", "b"]) if not ws.steps else Answer(answer="done")
        if ws.question == "a" and block:  # a person answers a only after b's subquestion came up
            await b1_started.wait()
        if ws.question == "b" and not ws.steps:
            return Ask(questions=["b1"])
        if ws.question == "b1" and block:
            b1_started.set()
            await anyio.sleep_forever()
        return Answer(answer=ws.question)

    path, cache = tmp_path / "t.json", CallCache(tmp_path / "c.sqlite")
    async with anyio.create_task_group() as group:  # the first session stops while b1 waits
        group.start_soon(lambda: hch.answer("root", depth=2, policy=FunctionPolicy(behaviour), call_cache=cache,
                                            trace_path=path))
        await wait_all_tasks_blocked()
        group.cancel_scope.cancel()
    before = ids(hch.load_trace(path))
    block = False
    result = await hch.answer("root", depth=2, policy=FunctionPolicy(behaviour), call_cache=cache, trace_path=path)
    after = ids(result.trace)
    assert {q: after[q] for q in before} == before  # cached calls finishing first no longer shift the ids
    assert set(after) == set(before) and result.trace.root == before["root"] == 0
    fresh = await hch.answer("root", depth=2, policy=FunctionPolicy(behaviour), call_cache=cache,
                             trace_path=tmp_path / "other.json")
    assert ids(fresh.trace) != before  # without the earlier trace, timing decides (the call cache answers at once)


async def test_ids_are_kept_only_for_the_same_run_and_the_same_question_at_a_place(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    await hch.answer("What is the sum of 1, 2, 3, 4?", depth=2, trace_path=path)
    earlier = previous_ids(path, "What is the sum of 1, 2, 3, 4?", 2, hch.ExpertPolicy().fingerprint, "")
    assert earlier == places(hch.load_trace(path)) and len(earlier) == 3
    assert earlier[()] == (0, "What is the sum of 1, 2, 3, 4?")
    assert previous_ids(path, "What is the sum of 1, 2, 3, 4?", 3, hch.ExpertPolicy().fingerprint, "") == {}
    assert previous_ids(tmp_path / "missing.json", "q", 1, "p", "") == {}


async def test_an_earlier_trace_with_a_bad_record_gives_no_ids(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    await hch.answer("What is the sum of 1, 2, 3, 4?", depth=2, trace_path=path)
    spoil_last_record(path)  # found only when read
    assert previous_ids(path, "What is the sum of 1, 2, 3, 4?", 2, hch.ExpertPolicy().fingerprint, "") == {}
