from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FunctionPolicy

import hch
from hch.run.position import Position, current, run_id
from hch.workspace import Action, Answer, Ask, Workspace


@pytest.mark.anyio
async def test_each_node_sees_its_own_position_in_the_trace() -> None:
    seen: dict[str, Position | None] = {}

    async def behaviour(workspace: Workspace) -> Action:
        seen[workspace.question] = current()
        if workspace.question == "root" and not workspace.steps:
            return Ask(questions=["a", "b"])
        if workspace.question == "b" and not workspace.steps:
            return Ask(questions=["b1"])
        return Answer(answer="x")

    result = await hch.answer("root", depth=2, policy=FunctionPolicy(behaviour))
    ids = {data["question"]: node for node, data in result.trace.workspaces()}
    assert seen["root"] == Position(ids["root"], 0)
    assert seen["a"] == Position(ids["a"], 1, ids["root"], 0, 0)
    assert seen["b"] == Position(ids["b"], 1, ids["root"], 0, 1)
    assert seen["b1"] == Position(ids["b1"], 2, ids["b"], 0, 0)
    assert current() is None  # nothing leaks out of the run


@pytest.mark.anyio
async def test_every_node_of_a_run_knows_which_run_it_is_in(tmp_path: Path) -> None:
    seen: dict[str, set[str | None]] = {}

    async def behaviour(workspace: Workspace) -> Action:
        seen.setdefault(workspace.question, set()).add(run_id())
        if workspace.question.startswith("root") and not workspace.steps:
            return Ask(questions=[workspace.question + " a"])
        return Answer(answer="x")

    await hch.answer("root1", depth=1, policy=FunctionPolicy(behaviour), trace_path=tmp_path / "t.json")
    await hch.answer("root2", depth=1, policy=FunctionPolicy(behaviour))
    assert seen["root1"] == seen["root1 a"] == {str(tmp_path / "t.json")}  # a run with a trace: its path
    assert len(seen["root2"]) == 1 and seen["root2"] == seen["root2 a"] != {None}  # without one: a fresh id
    assert run_id() is None
