"""Policies chosen by position in the tree: `root=human,else=llm`, `depth0=expert,else=human`.

Grammar (spaces around `=` and `,` are allowed):

    SPEC     := PART ("," PART)*
    PART     := POSITION "=" POLICY
    POSITION := "root" | "depth" N | "else"

`root` is the run's top node; `depthN` is every node whose workspace depth (the n of its
HCH_n: how many levels may still be delegated below it) is N, so `depth0` are the leaves;
`else` is every other node and is required. The most specific position wins: root, then
depthN, then else. POLICY is any other spec (`expert`, `llm:preset`, `script:FILE`,
`expert(noise=0.02)`); commas and `=` inside its parentheses or brackets are its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from hch.errors import PolicySpecError
from hch.run.policy import Policy
from hch.workspace import Action, Reply, Workspace

POSITION = re.compile(r"root|else|depth(0|[1-9][0-9]*)")
NAME = re.compile(r"[a-z][a-z0-9_]*")
OPEN, CLOSE = "([{", ")]}"


class PositionalPolicy:
    """A composite policy: one part per position. The engine asks `at()` for each node."""

    def __init__(self, parts: dict[str, Policy]) -> None:
        if "else" not in parts:
            raise PolicySpecError("a positional policy needs an else= part for the nodes no other part covers")
        unknown = [p for p in parts if not POSITION.fullmatch(p)]
        if unknown:
            raise PolicySpecError(f"unknown position {unknown[0]!r}; positions are root, depthN (e.g. depth0) and else")
        self.parts = dict(sorted(parts.items(), key=lambda item: _order(item[0])))

    def at(self, depth: int, root: bool) -> Policy:
        if root and "root" in self.parts:
            return self.parts["root"]
        return self.parts.get(f"depth{depth}", self.parts["else"])

    @property
    def fingerprint(self) -> str:
        inner = ",".join(f"{position}={policy.fingerprint}" for position, policy in self.parts.items())
        return f"positional({inner})"

    async def act(self, workspace: Workspace) -> Action | Reply:
        raise TypeError("a positional policy does not act itself; the engine resolves it with at(depth, root)")

    def __repr__(self) -> str:
        return f"PositionalPolicy({self.fingerprint!r})"


def _order(position: str) -> tuple[int, int, str]:
    """root first, then depths in increasing order, else last: the fingerprint is canonical."""
    if position == "root":
        return (0, 0, "")
    if position == "else":
        return (2, 0, "")
    number = position.removeprefix("depth")  # by length, then digits: no int() of a 5,000-digit number
    return (1, len(number), number)


def split_top(text: str, separator: str, maxsplit: int = -1) -> list[str]:
    """`text` split at `separator` where it is outside parentheses, brackets and braces."""
    parts: list[str] = []
    depth = start = 0
    for index, char in enumerate(text):
        if char in OPEN:
            depth += 1
        elif char in CLOSE:
            depth = max(depth - 1, 0)
        elif char == separator and depth == 0 and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def is_positional(spec: str) -> bool:
    """Whether a spec is positional: its first part is `WORD=...` with `=` at the top level.

    `expert(noise=0.02)` is not (the `=` is inside parentheses), nor is `script:a=b.yaml`."""
    head = split_top(spec, ",", maxsplit=1)[0]
    pieces = split_top(head, "=", maxsplit=1)
    return len(pieces) == 2 and NAME.fullmatch(pieces[0].strip()) is not None


def parse(spec: str) -> list[tuple[str, str]]:
    """The (position, policy spec) pairs of a positional spec, in the order written."""
    pairs: list[tuple[str, str]] = []
    for part in split_top(spec, ","):
        pieces = split_top(part, "=", maxsplit=1)
        if len(pieces) != 2 or not pieces[1].strip():
            raise PolicySpecError(f"malformed part {part.strip()!r} of {spec!r}; expected POSITION=POLICY")
        position, policy = pieces[0].strip(), pieces[1].strip()
        if not POSITION.fullmatch(position):
            raise PolicySpecError(f"unknown position {position!r} in {spec!r}; positions are root, depthN and else")
        if any(position == seen for seen, _ in pairs):
            raise PolicySpecError(f"position {position!r} is given twice in {spec!r}")
        if is_positional(policy):
            raise PolicySpecError(f"positional specs do not nest: {part.strip()!r}")
        pairs.append((position, policy))
    return pairs


def build(spec: str, make: Callable[[str], Policy]) -> PositionalPolicy:
    """The policy a positional spec describes; `make` builds each part from its spec.

    Parts with the same spec share one policy object (so e.g. one person's prompts queue
    together, and one LLM client and its concurrency limit serve every position)."""
    built: dict[str, Policy] = {}
    parts: dict[str, Policy] = {}
    for position, policy in parse(spec):
        if policy not in built:
            built[policy] = make(policy)
        parts[position] = built[policy]
    return PositionalPolicy(parts)
