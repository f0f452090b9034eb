"""A policy from any Python callable of the workspace, for tests and research code.

```python
async def h(workspace: Workspace) -> Ask | Answer | str:
    return "42" if workspace.depth == 0 else Ask(questions=["..."])

policy = CallablePolicy(h, fingerprint="my-h@1")
```

`hch.answer(..., policy=h)` takes the bare function too (`from_function`): its fingerprint is
then its `fingerprint` attribute if it has one, else its qualified name and a hash of its
source, so editing the function's code invalidates its cached calls (but editing what it calls
does not: give it a `fingerprint` attribute with a version when that matters).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from hch.workspace import Action, Answer, Ask, Reply, Workspace

Output: TypeAlias = Ask | Answer | Reply | str
"""What the callable may return: an action, a full reply, or a bare string meaning `Answer(str)`."""
Function: TypeAlias = Callable[[Workspace], Awaitable[Output] | Output]
PolicyFunction: TypeAlias = Function
"""A plain function `hch.answer(policy=...)` accepts in place of a policy object."""


class CallablePolicy:
    """Calls `function` with each workspace. The fingerprint is required: it keys the call
    cache, so it must change whenever the function's behaviour does (put a version in it)."""

    def __init__(self, function: Function, fingerprint: str) -> None:
        if not callable(function):
            raise TypeError(f"a callable policy needs a function of the workspace, not {type(function).__name__}")
        if not isinstance(fingerprint, str) or not fingerprint.strip():
            raise ValueError(f"a callable policy needs a non-empty fingerprint string, not {fingerprint!r}")
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


def from_function(function: Function) -> CallablePolicy:
    """A policy from a bare function; the fingerprint is the function's `fingerprint` attribute,
    else `fn:MODULE.QUALNAME@HASH` with a hash of its source code."""
    given = getattr(function, "fingerprint", None)
    if isinstance(given, str) and given.strip():
        return CallablePolicy(function, given)
    name = f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', type(function).__name__)}"
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        raise TypeError(
            f"cannot fingerprint the policy function {name}: its source code is not available (defined in a "
            "REPL?); give it a `fingerprint` attribute (a string that changes with its behaviour) or wrap it "
            "in hch.policies.callable.CallablePolicy(function, fingerprint)"
        ) from None
    return CallablePolicy(function, f"fn:{name}@{hashlib.sha256(source.encode()).hexdigest()[:12]}")
