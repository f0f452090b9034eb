"""Small policies for tests: behaviour given as a plain function of the workspace."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hch.record.trace import Trace
from hch.workspace import Action, Reply, Workspace

Behaviour = Callable[[Workspace], Awaitable[Action | Reply]]


class FunctionPolicy:
    """A policy whose `act` is an async function; counts calls per question."""

    def __init__(self, behaviour: Behaviour, fingerprint: str = "test") -> None:
        self.behaviour = behaviour
        self.fingerprint = fingerprint
        self.calls: Counter[str] = Counter()

    async def act(self, workspace: Workspace) -> Action | Reply:
        self.calls[workspace.question] += 1
        return await self.behaviour(workspace)


def unforced_guesses(trace: Trace) -> list[str]:
    """Questions whose node guessed although it could still ask: it had no guessed sub-answer to pass
    up, and its last policy call saw depth > 0, steps left and no refusal. Honest H: none."""
    found = []
    for node, data in trace.workspaces():
        if data["status"] != "guess":
            continue
        if any(trace.graph.nodes[child]["status"] == "guess" for child, _ in trace.children(node)):
            continue
        seen = trace.graph.nodes[max(trace.node_calls(node))]["input"]
        if seen["depth"] > 0 and seen["steps_left"] > 0 and seen["refusal"] is None:
            found.append(data["question"])
    return found


def spy_on_renames(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files `hch.files` renames into place from now on (an atomic write's last step)."""
    import os

    from hch import files

    replaced: list[str] = []
    real = os.replace

    def spy(src: str, dst: str | Path) -> None:
        replaced.append(Path(dst).name)
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", spy)
    return replaced


def trace_data(path: Path) -> dict[str, Any]:
    """A trace file as node-link JSON data (`graph`, `nodes`, `edges`; what `hch export --format json`
    writes), whatever its schema: runs write schema 2, one record per line."""
    import json

    from hch.record.format import load, to_data

    data: dict[str, Any] = json.loads(json.dumps(to_data(load(path)), default=str))
    return data
