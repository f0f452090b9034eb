"""The policy protocol: H, the thing that looks at a workspace and decides what to do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from hch.workspace import Action, Answer, Ask, Expand, Reply, Workspace


@runtime_checkable
class Policy(Protocol):
    """An async H. `fingerprint` must change whenever the policy's behaviour could."""

    @property
    def fingerprint(self) -> str:
        """A stable identifier of this policy's behaviour, used as a cache key."""
        ...

    async def act(self, workspace: Workspace) -> Action | Reply:
        """Decide what to do with a workspace: ask subquestions or answer."""
        ...


@runtime_checkable
class Positional(Protocol):
    """A policy made of parts chosen by where a node sits in the tree."""

    def at(self, depth: int, root: bool) -> Policy:
        """The policy that acts for a node at `depth` (`root` for the run's top node)."""
        ...


@runtime_checkable
class ChecksQuestions(Protocol):
    """A policy that can tell up front that it cannot take a question at all."""

    def check(self, question: str, context: str) -> None:
        """Raise `QuestionError` with a one-line reason if `question` is not for this policy."""
        ...


def resolve(policy: Policy, depth: int, root: bool) -> Policy:
    """The leaf policy acting at a position; composite policies may nest."""
    while isinstance(policy, Positional):
        policy = policy.at(depth, root)
    return policy


def as_reply(output: Action | Reply) -> Reply:
    """Policies may return a bare action; the engine always works with a `Reply`."""
    if isinstance(output, Reply):
        return output
    if isinstance(output, (Ask, Answer, Expand)):
        return Reply(action=output)
    raise TypeError(f"a policy must return an Ask, an Answer, an Expand or a Reply, not {type(output).__name__}")


def components(policy: object) -> Iterator[object]:
    """`policy` and every policy inside it: a vote's inner policy, a positional policy's parts, recursively."""
    stack = [policy]
    while stack:
        current = stack.pop()
        yield current
        inner = getattr(current, "inner", None)
        if inner is not None:
            stack.append(inner)
        parts = getattr(current, "parts", None)
        if isinstance(parts, dict):
            stack.extend(parts.values())
