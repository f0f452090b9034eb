"""Comparing two traces of the same question: where they first differ, and how much.

The trees are matched from the roots down: a child matches the child asked at the same
step and position if it asks the same question. The *first* difference is the earliest
policy call (by its start time in the first trace) whose input or output differs between
two matched workspaces, because every later difference follows from it; a difference seen
only in node fields (answer, status) is reported when no call differs.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import pydantic_core
from pydantic import BaseModel

from hch.record.summary import summarize
from hch.record.trace import Trace


class Difference(BaseModel):
    """Where two traces part ways."""

    node_a: int
    """The workspace in the first trace."""
    node_b: int
    """The matching workspace in the second trace."""
    question: str
    """Their question."""
    what: str
    """What differs: e.g. `call 2 output`, `call 1 input`, `answer`, `status`, `calls`."""
    expected: Any
    """The value in the first trace."""
    got: Any
    """The value in the second trace."""

    def line(self) -> str:
        """The difference as one line."""
        return (
            f"node {self.node_a} (b: {self.node_b}) {self.question!r}: {self.what} differs: "
            f"expected {_short(self.expected)}, got {_short(self.got)}"
        )


class DiffReport(BaseModel):
    """A comparison of two traces."""

    same: bool
    """True when no matched workspace differs and every workspace is matched."""
    first: Difference | None
    """The earliest difference, or None."""
    answers_differ: int
    """Matched workspaces whose answers differ."""
    subquestions_differ: int
    """Matched workspaces whose subquestions differ (in text, number or order)."""
    only_in_a: int
    """Workspaces of the first trace with no match in the second."""
    only_in_b: int
    """Workspaces of the second trace with no match in the first."""
    nodes: tuple[int, int]
    """Workspaces in each trace."""
    policy_calls: tuple[int, int]
    """Policy calls made in each trace."""
    tokens: tuple[int, int]
    """Tokens spent in each trace."""
    cost: tuple[float, float]
    """Dollars spent in each trace."""

    def text(self) -> str:
        """The comparison as a few lines for the terminal."""
        lines = ["the traces agree" if self.same else "the traces differ"]
        if self.first is not None:
            lines.append("first difference: " + self.first.line())
        lines += [
            f"answers differ at {self.answers_differ} nodes; subquestions differ at {self.subquestions_differ}",
            f"workspaces only in a: {self.only_in_a}, only in b: {self.only_in_b}",
            f"nodes: {self.nodes[0]} vs {self.nodes[1]} · policy calls: {self.policy_calls[0]} vs"
            f" {self.policy_calls[1]} · tokens: {self.tokens[0]} vs {self.tokens[1]}"
            f" · cost: ${self.cost[0]:.4f} vs ${self.cost[1]:.4f}",
        ]
        return "\n".join(lines)


def match(a: Trace, b: Trace) -> list[tuple[int, int]]:
    """Pairs of workspaces (a, b) matched from the roots by asking position and question."""
    pairs: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    queue = deque([(a.root, b.root)])
    while queue:
        na, nb = queue.popleft()
        if (na, nb) in seen:
            continue
        seen.add((na, nb))
        pairs.append((na, nb))
        kids_b = {(e["step"], e["order"]): child for child, e in b.children(nb)}
        for child_a, edge in a.children(na):
            child_b = kids_b.get((edge["step"], edge["order"]))
            if child_b is not None and a.nodes[child_a]["question"] == b.nodes[child_b]["question"]:
                queue.append((child_a, child_b))
    return pairs


def diff(a: Trace, b: Trace) -> DiffReport:
    """Compare two traces (normally of the same question)."""
    pairs = match(a, b)
    call_diffs: list[tuple[float, Difference]] = []
    node_diffs: list[Difference] = []
    answers = subquestions = 0
    for na, nb in pairs:
        da, db = a.nodes[na], b.nodes[nb]
        found = _first_call_difference(a, b, na, nb)
        if found is not None:
            call_diffs.append(found)
        for field in ("answer", "status", "question"):
            if da.get(field) != db.get(field):
                node_diffs.append(Difference(node_a=na, node_b=nb, question=da["question"], what=field,
                                             expected=da.get(field), got=db.get(field)))
        answers += da.get("answer") != db.get("answer")
        subquestions += _asked(a, na) != _asked(b, nb)
    first = min(call_diffs, key=lambda item: item[0])[1] if call_diffs else (node_diffs[0] if node_diffs else None)
    total_a = sum(1 for _ in a.workspaces())
    total_b = sum(1 for _ in b.workspaces())
    matched_a = len({na for na, _ in pairs})
    matched_b = len({nb for _, nb in pairs})
    sa, sb = summarize(a), summarize(b)
    return DiffReport(
        same=first is None and matched_a == total_a and matched_b == total_b,
        first=first, answers_differ=answers, subquestions_differ=subquestions,
        only_in_a=total_a - matched_a, only_in_b=total_b - matched_b,
        nodes=(sa.nodes, sb.nodes), policy_calls=(sa.policy_calls, sb.policy_calls),
        tokens=(sa.tokens, sb.tokens), cost=(sa.cost, sb.cost),
    )


def _asked(trace: Trace, node: int) -> list[tuple[int, str]]:
    return [(e["step"], trace.nodes[c]["question"]) for c, e in trace.children(node)]


def _first_call_difference(a: Trace, b: Trace, na: int, nb: int) -> tuple[float, Difference] | None:
    calls_a, calls_b = sorted(a.node_calls(na)), sorted(b.node_calls(nb))
    question = a.nodes[na]["question"]
    for index, (ca, cb) in enumerate(zip(calls_a, calls_b, strict=False), start=1):
        xa, xb = a.nodes[ca], b.nodes[cb]
        for field in ("input", "output", "error"):
            if _differ(xa.get(field), xb.get(field)):
                where = Difference(node_a=na, node_b=nb, question=question, what=f"call {index} {field}",
                                   expected=xa.get(field), got=xb.get(field))
                return float(xa.get("started", 0.0)), where
    if len(calls_a) != len(calls_b):
        last = a.nodes[calls_a[-1]] if calls_a else a.nodes[na]
        where = Difference(node_a=na, node_b=nb, question=question, what="number of calls",
                           expected=len(calls_a), got=len(calls_b))
        return float(last.get("started", 0.0)), where
    return None


def _differ(a: Any, b: Any) -> bool:
    """Whether two recorded values differ as JSON (tuples in memory, lists on disk).

    Equal compact JSON in the values' own key order means equal canonical JSON: that check,
    in pydantic-core, spares the sorted `json.dumps` of nearly every call of a faithful replay.
    """
    try:
        if pydantic_core.to_json(a) == pydantic_core.to_json(b):
            return False
    except pydantic_core.PydanticSerializationError:
        pass
    return _canonical(a) != _canonical(b)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
