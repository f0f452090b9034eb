"""The desk and the web policy in one process: runs ask, simulated participants take and answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import hch
from hch.limits import Limits
from hch.serve.desk import EXPIRED, WITHDRAWN, Desk, Refused, parse_action
from hch.serve.policy import WebPolicy
from hch.serve.store import Store
from hch.workspace import Answer, Ask, Workspace


def decide(workspace: dict[str, Any]) -> dict[str, Any]:
    """A participant's rule: ask once for each half where asking is allowed, then add the answers up."""
    if workspace["depth"] > 0 and not workspace["steps"]:
        question = workspace["question"]
        return {"kind": "ask", "questions": [f"half A of {question}", f"half B of {question}"]}
    parts = [sub["answer"] for step in workspace["steps"] for sub in step]
    return {"kind": "answer", "answer": "+".join(parts) if parts else "1"}


async def participant(desk: Desk, name: str, took: list[tuple[str, str, int]]) -> None:
    while True:
        assignment = desk.work(name)
        if assignment is None:
            await desk.changed(5)
            continue
        item = desk.item(assignment.item)
        took.append((name, item.tree, item.node))
        desk.submit(name, assignment.id, decide(item.workspace))


def run_with(desk: Desk, names: list[str], depth: int, trace: Path, limits: Limits | None = None) -> tuple[Any, list]:
    took: list[tuple[str, str, int]] = []

    async def main() -> Any:
        async with anyio.create_task_group() as group:
            for name in names:
                group.start_soon(participant, desk, name, took)
            result = await hch.answer("Q", depth=depth, policy=WebPolicy(desk), trace_path=trace, limits=limits)
            group.cancel_scope.cancel()
        return result

    return anyio.run(main), took


def test_participants_answer_a_tree_each_node_by_someone_else(tmp_path: Path) -> None:
    desk = Desk(Store(tmp_path / "s.sqlite"))
    result, took = run_with(desk, ["p1", "p2", "p3"], 1, tmp_path / "t.json")
    assert result.answer == "1+1"
    by_node: dict[int, set[str]] = {}
    for name, _, node in took:
        by_node.setdefault(node, set()).add(name)
    people = [next(iter(names)) for names in by_node.values()]
    assert len(by_node) == 3 and all(len(names) == 1 for names in by_node.values())
    assert len(set(people)) == 3  # the tree barrier: three workspaces, three people
    calls = [data for _, data in result.trace.graph.nodes(data=True) if data.get("kind") == "call"]
    raws = [call["raw"] for call in calls]
    assert all(raw["participant"] in ("p1", "p2", "p3") and raw["shown_at"] and raw["answered_at"] for raw in raws)
    assert len(calls) == 4  # the root's two steps, two leaves


def test_with_too_few_people_for_a_tree_the_rest_waits_and_nobody_breaks_the_barrier(tmp_path: Path) -> None:
    desk = Desk(Store(tmp_path / "s.sqlite"))
    took: list[tuple[str, str, int]] = []

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(participant, desk, "p1", took)
            group.start_soon(participant, desk, "p2", took)
            group.start_soon(_run, desk, tmp_path / "t.json", 1)
            while len(took) < 2 or len(desk.live) != 1:  # the root asked; one leaf answered, one waits
                await desk.changed(5)
            assert desk.work("p1") is None and desk.work("p2") is None  # neither may take a third workspace
            group.cancel_scope.cancel()

    anyio.run(main)
    assert len({node for _, _, node in took}) == 2 and {name for name, _, _ in took} == {"p1", "p2"}
    assert len(desk.live) == 0  # the stopped run took its item back


def test_a_workspace_whose_time_runs_out_goes_to_someone_else(tmp_path: Path) -> None:
    now = [1000.0]
    desk = Desk(Store(tmp_path / "s.sqlite"), time_budget=60, clock=lambda: now[0])

    async def main() -> Any:
        async with anyio.create_task_group() as group:
            group.start_soon(_run, desk, tmp_path / "t.json")
            while not desk.live:
                await desk.changed(1)
            first = desk.work("p1")
            assert first is not None and desk.seconds_left(first) == 60
            now[0] += 61
            assert desk.work("p1") is None  # gone, and never back to p1
            assert desk.messages["p1"] == EXPIRED
            with pytest.raises(Refused) as refused:
                desk.submit("p1", first.id, {"kind": "answer", "answer": "late"})
            assert refused.value.status == 409
            second = desk.work("p2")
            assert second is not None and second.item == first.item
            reply = desk.submit("p2", second.id, {"kind": "answer", "answer": "42"})
        return reply

    reply = anyio.run(main)
    assert reply.raw is not None and reply.raw["participant"] == "p2"
    assert [(e["participant"], e["outcome"]) for e in reply.raw["earlier"]] == [("p1", "expired")]


async def _run(desk: Desk, trace: Path, depth: int = 0) -> None:
    await hch.answer("Q", depth=depth, policy=WebPolicy(desk), trace_path=trace)


def test_a_passed_workspace_goes_to_someone_else(tmp_path: Path) -> None:
    desk = Desk(Store(tmp_path / "s.sqlite"))

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(_run, desk, tmp_path / "t.json")
            while not desk.live:
                await desk.changed(1)
            first = desk.work("p1")
            assert first is not None
            desk.pass_on("p1", first.id)
            assert desk.work("p1") is None
            second = desk.work("p2")
            assert second is not None and second.item == first.item
            desk.submit("p2", second.id, {"kind": "guess", "answer": "7"})

    anyio.run(main)


def test_a_stored_answer_survives_a_restart_and_is_not_asked_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    result, _ = run_with(Desk(store), ["p1", "p2", "p3"], 1, tmp_path / "t.json")
    store.close()
    again = Store(tmp_path / "s.sqlite")
    desk = Desk(again)
    assert desk.seen["p1"] and sum(len(s) for s in desk.seen.values()) == 3  # the barrier's memory is kept
    replay, took_again = run_with(desk, ["p1", "p2", "p3"], 1, tmp_path / "t2.json")
    assert took_again == [] and replay.answer == result.answer  # every reply came from the store


def test_a_call_the_run_stops_waiting_for_is_withdrawn_from_its_participant(tmp_path: Path) -> None:
    desk = Desk(Store(tmp_path / "s.sqlite"))

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(_run, desk, tmp_path / "t.json")  # as a node timeout or a stopped run does
            while desk.work("p1") is None:
                await desk.changed(5)
            group.cancel_scope.cancel()

    anyio.run(main)
    assert "p1" not in desk.current and desk.messages["p1"] == WITHDRAWN
    assert [a.outcome for a in desk.store.assignments()] == ["withdrawn"]
    assert [i.status for i in desk.store.items()] == ["closed"]


def test_the_path_barrier_lets_one_person_take_siblings(tmp_path: Path) -> None:
    desk = Desk(Store(tmp_path / "s.sqlite"), barrier="path")
    result, took = run_with(desk, ["p1", "p2"], 1, tmp_path / "t.json")
    assert result.answer == "1+1"
    root = {name for name, _, node in took if node == 0}
    leaves = {name for name, _, node in took if node != 0}
    assert not root & leaves


def test_actions_are_checked_against_the_workspace() -> None:
    leaf = Workspace(question="q", depth=0)
    inner = Workspace(question="q", depth=1, max_asks=2)
    assert parse_action({"kind": "answer", "answer": " 4 "}, leaf) == Answer(answer="4")
    assert parse_action({"kind": "guess", "answer": "4"}, leaf) == Answer(answer="4", guess=True)
    assert parse_action({"kind": "ask", "questions": ["a", " ", "b"]}, inner) == Ask(questions=["a", "b"])
    bad_actions = [
        ({"kind": "ask", "questions": ["a"]}, leaf), ({"kind": "ask", "questions": ["a", "b", "c"]}, inner),
        ({"kind": "ask", "questions": "a"}, inner), ({"kind": "ask", "questions": [" "]}, inner),
        ({"kind": "answer", "answer": ""}, leaf), ({"kind": "answer", "answer": 4}, leaf),
        ({"kind": "answer", "answer": "x" * 20_001}, leaf), ({"kind": "answer", "answer": "\ud800"}, leaf),
        ({"kind": "quit"}, leaf),
    ]
    for bad, where in bad_actions:
        with pytest.raises(Refused) as refused:
            parse_action(bad, where)
        assert refused.value.status == 400


def test_the_same_workspace_asked_twice_at_once_is_one_item_answered_once(tmp_path: Path) -> None:
    desk = Desk(Store(tmp_path / "s.sqlite"))
    workspace = Workspace(question="twice", depth=0)
    replies: list[Any] = []

    async def ask() -> None:
        replies.append(await desk.serve("web", workspace, "tree", 5, 1))

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(ask)
            group.start_soon(ask)
            while len(desk.live) != 1 or next(iter(desk.live.values())).waiters != 2:
                await desk.changed(5)
            assignment = desk.work("p1")
            assert assignment is not None
            desk.submit("p1", assignment.id, {"kind": "answer", "answer": "once"})

    anyio.run(main)
    assert [r.action.answer for r in replies] == ["once", "once"]
    assert len(desk.store.items()) == 1


def test_a_workspace_left_open_by_a_finished_job_is_withdrawn_at_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    item = store.queue("tree", 0, None, "k", Workspace(question="q", depth=0).model_dump(mode="json"))
    store.assign(item, "p1", None)
    desk = Desk(store)
    assert "p1" in desk.current  # a restarted server gives an open workspace back to its participant
    desk.job_ended({"tree"})
    assert "p1" not in desk.current and desk.messages["p1"] == WITHDRAWN


def test_a_workspace_whose_participant_has_no_page_open_goes_to_someone_else(tmp_path: Path) -> None:
    now = [1000.0]
    desk = Desk(Store(tmp_path / "s.sqlite"), clock=lambda: now[0], away=30)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(_run, desk, tmp_path / "t.json")
            while not desk.live:
                await desk.changed(1)
            with desk.present("p1"):
                first = desk.work("p1")
                now[0] += 100  # a page that stays open keeps its workspace, however long it waits
                desk.work("p2")
                assert first is not None and desk.current["p1"] is first
            now[0] += 29
            assert desk.work("p2") is None  # a page closed a moment ago may come back (a reload)
            now[0] += 2
            second = desk.work("p2")
            assert second is not None and second.item == first.item and "p1" not in desk.current
            desk.submit("p2", second.id, {"kind": "answer", "answer": "4"})

    anyio.run(main)
    assert [a.outcome for a in desk.store.assignments()] == ["left", "answered"]
