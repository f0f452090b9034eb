"""Small policies for tests: behaviour given as a plain function of the workspace."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

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
