"""A policy from any Python callable of the workspace, for tests and research code.

```python
async def h(workspace: Workspace) -> Ask | Answer | str:
    return "42" if workspace.depth == 0 else Ask(questions=["..."])

policy = CallablePolicy(h, fingerprint="my-h@1")
```
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from hch.workspace import Action, Answer, Ask, Reply, Workspace

Output: TypeAlias = Ask | Answer | Reply | str
"""What the callable may return: an action, a full reply, or a bare string meaning `Answer(str)`."""
Function: TypeAlias = Callable[[Workspace], Awaitable[Output] | Output]


class CallablePolicy:
    """Calls `function` with each workspace. The fingerprint is required: it keys the call
    cache, so it must change whenever the function's behaviour does (put a version in it)."""

    def __init__(self, function: Function, fingerprint: str) -> None:
        if not fingerprint.strip():
            raise ValueError("a callable policy needs a non-empty fingerprint")
        self.function = function
        self._fingerprint = fingerprint

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    async def act(self, workspace: Workspace) -> Action | Reply:
        output = self.function(workspace)
        if inspect.isawaitable(output):
            output = await output
        if isinstance(output, str):
            return Answer(answer=output)
        return output

    def __repr__(self) -> str:
        return f"CallablePolicy({self._fingerprint!r})"


def policy(fingerprint: str) -> Callable[[Function], CallablePolicy]:
    """Decorator form: `@policy("my-h@1")` over `async def h(workspace): ...`."""

    def wrap(function: Function) -> CallablePolicy:
        return CallablePolicy(function, fingerprint)

    return wrap
