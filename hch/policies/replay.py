"""A policy that serves every call from a recorded trace: deterministic, offline.

A call is served when its input (the workspace, without the shared context) is exactly
the input of a recorded call; identical inputs are served in their recorded order. Any
other input is a divergence: it is remembered (the first one is what `hch replay`
reports) and the node fails, unless a `fallback` policy is given to act there instead.
Optionally another policy (`override`) acts instead at one recorded workspace and
everything below it, for "what if H here were different?"; the calls above it then see
different sub-answers, which only a `fallback` (e.g. the recorded policy, run live) can serve.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from contextvars import ContextVar
from typing import Any

import pydantic_core
from pydantic import BaseModel

from hch.errors import PolicyError
from hch.record.trace import Trace
from hch.run.policy import Policy, as_reply, resolve
from hch.workspace import Action, Reply, Usage, Workspace, normalize_question

# Set in the task of the workspace where the override starts; tasks of its subquestions
# inherit it (anyio copies the context into the tasks a node starts), siblings do not.
_SWAPPED: ContextVar[bool] = ContextVar("hch_replay_swapped", default=False)


class Divergence(BaseModel):
    """The first policy call that the recording cannot serve."""

    node: int | None
    """The recorded workspace with the same question and depth, if there is one."""
    question: str
    """The question of the workspace that made the call."""
    call: int
    """Which call of that workspace (1 = its first)."""
    expected: dict[str, Any] | None
    """The input the recording holds for that call (None: the recording made no such call)."""
    got: dict[str, Any]
    """The input the replay produced."""

    def line(self) -> str:
        """One line: node, and the first part of the input that differs."""
        where = f"node {self.node}" if self.node is not None else "a workspace not in the recording"
        head = f"{where} ({self.question!r}) call {self.call}"
        if self.expected is None:
            return f"{head}: the recording made no such call; got input {_short(self.got)}"
        for field in sorted(set(self.expected) | set(self.got)):
            if self.expected.get(field) != self.got.get(field):
                return (f"{head}: input {field} differs: expected {_short(self.expected.get(field))},"
                        f" got {_short(self.got.get(field))}")
        return f"{head}: input differs"


def input_key(data: dict[str, Any]) -> str:
    """A canonical text of a call input, for exact lookups."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


class ReplayPolicy:
    """Positional policy: at each position, a leaf carrying the recorded policy's fingerprint."""

    def __init__(
        self, trace: Trace, override: Policy | None = None, from_node: int | None = None,
        fallback: Policy | None = None,
    ) -> None:
        self.trace = trace
        self.override = override
        self.fallback = fallback
        self.unserved = 0
        self.divergence: Divergence | None = None
        self.served = 0
        self._calls: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        # The same queues by the input's compact JSON in recorded key order: a live workspace's
        # model_dump_json() finds its queue there without building and sorting a canonical text.
        self._fast: dict[bytes, deque[dict[str, Any]]] = {}
        self._by_question: dict[tuple[str, int], int] = {}
        self._made: dict[tuple[str, int], int] = defaultdict(int)
        for _, data in sorted(trace.calls(), key=lambda item: (item[1].get("started", 0.0), item[0])):
            queue = self._calls[input_key(data["input"])]
            queue.append(data)
            self._fast.setdefault(_compact(data["input"]), queue)
        for node, data in trace.workspaces():
            self._by_question.setdefault((normalize_question(data["question"]), data["depth"]), node)
        for _, data in trace.calls():  # as the policy saw it (in pointer mode `$1`, not the run's pointer)
            seen = data["input"]
            self._by_question.setdefault((normalize_question(seen["question"]), seen["depth"]), data["workspace"])
        root = trace.root
        self._fingerprints = {(data["depth"], node == root): data["policy"] for node, data in trace.workspaces()}
        self._default = str(trace.meta.get("policy", trace.graph.nodes[root]["policy"]))
        self._start: tuple[str, int] | None = None
        if override is not None:
            start = from_node if from_node is not None else root
            data = trace.graph.nodes[start]
            calls = sorted(trace.node_calls(start))  # the question as the policy saw it (pointer mode: `$1`)
            seen = trace.graph.nodes[calls[0]]["input"]["question"] if calls else data["question"]
            self._start = (normalize_question(seen), data["depth"])

    @property
    def fingerprint(self) -> str:
        return "replay(" + self._default + ")"

    async def act(self, workspace: Workspace) -> Action | Reply:
        """Serve a call directly (the engine normally goes through `at`)."""
        return await self.serve(workspace, root=False)

    def at(self, depth: int, root: bool) -> Policy:
        return _Leaf(self, self._fingerprints.get((depth, root), self._default), root)

    async def serve(self, workspace: Workspace, root: bool) -> Reply:
        """The recorded reply for this workspace, or the override's."""
        where = (normalize_question(workspace.question), workspace.depth)
        if self.override is not None and not _SWAPPED.get() and where == self._start:
            _SWAPPED.set(True)
        if _SWAPPED.get():
            assert self.override is not None
            return as_reply(await resolve(self.override, workspace.depth, root).act(workspace))
        self._made[where] += 1
        queue = self._fast.get(workspace.model_dump_json(exclude={"context"}).encode())
        if not queue:  # not in recorded key order, or not recorded: the canonical lookup decides
            got = workspace.model_dump(mode="json", exclude={"context"})
            queue = self._calls.get(input_key(got))
        if not queue:
            self._diverged(where, got)
            self.unserved += 1
            if self.fallback is not None:
                return as_reply(await resolve(self.fallback, workspace.depth, root).act(workspace))
            raise PolicyError("replay diverged: the recording holds no call with this input")
        call = queue.popleft()
        self.served += 1
        if call.get("output") is None:  # the recorded call failed: fail the same way
            raise PolicyError(str(call.get("error") or "the recorded call failed"))
        return Reply.model_validate({
            "action": call["output"], "usage": call.get("usage") or Usage(), "raw": call.get("raw"),
            "attempts": call.get("attempts") or [], "invocations": call.get("invocations") or 1,
        })

    def _diverged(self, where: tuple[str, int], got: dict[str, Any]) -> None:
        if self.divergence is not None:
            return
        node = self._by_question.get(where)
        index = self._made[where]
        expected = None
        if node is not None:
            calls = sorted(self.trace.node_calls(node))
            if index <= len(calls):
                expected = self.trace.graph.nodes[calls[index - 1]]["input"]
        self.divergence = Divergence(node=node, question=got["question"], call=index, expected=expected, got=got)


class _Leaf:
    def __init__(self, replay: ReplayPolicy, fingerprint: str, root: bool) -> None:
        self.replay, self.fingerprint, self.root = replay, fingerprint, root

    async def act(self, workspace: Workspace) -> Action | Reply:
        return await self.replay.serve(workspace, self.root)


def _compact(data: dict[str, Any]) -> bytes:
    """Compact JSON in the data's own key order, as pydantic writes a model (b"" if it cannot)."""
    try:
        return pydantic_core.to_json(data)
    except pydantic_core.PydanticSerializationError:
        return b""


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
