"""The HCH barrier among people: who may be given which workspace.

In HCH each copy of H sees only its own question and the answers to its own subquestions. A person who
answered the parent's workspace and then gets the child's knows what the child's copy must not: why the
question is asked. So, by default (`tree`), a participant is never given workspaces of two nodes of the
same tree (run). With `path` the rule is weaker: never two nodes on one root-to-leaf path (an ancestor and
its descendant), so siblings and cousins may go to the same person.

A node that takes several steps (ask, read the answers, ask again or answer) is one workspace: its later
steps may go to the person who did its earlier ones, and go to them first. Being shown a workspace counts,
whether or not the person answered it; a workspace a person let run out of time, or passed, never comes back
to them. Ancestry is known through the workspaces served on the web (each records its asker); where it is
not known (an asker played by another policy), `path` falls back to the `tree` rule for that pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

Barrier = Literal["tree", "path"]
BARRIERS: tuple[Barrier, ...] = ("tree", "path")
Node = tuple[str, int]
"""A workspace: (tree, node id)."""


def ancestors(node: Node, parents: Mapping[Node, int | None]) -> set[int] | None:
    """The node ids above `node` up to its tree's root, or None where the chain is not known."""
    tree, current = node
    found: set[int] = set()
    while True:
        if (tree, current) not in parents:
            return None
        parent = parents[tree, current]
        if parent is None:
            return found
        if parent in found:  # a malformed chain: treat as unknown rather than loop
            return None
        found.add(parent)
        current = parent


def related(a: Node, b: Node, parents: Mapping[Node, int | None], barrier: Barrier) -> bool:
    """Whether one person may not have both workspaces `a` and `b` (the same node is never related to itself)."""
    if a[0] != b[0] or a[1] == b[1]:
        return False
    if barrier == "tree":
        return True
    above_a, above_b = ancestors(a, parents), ancestors(b, parents)
    if above_a is None or above_b is None:
        return True  # ancestry not known: as strict as the tree rule
    return b[1] in above_a or a[1] in above_b


def may_take(seen: Iterable[Node], node: Node, parents: Mapping[Node, int | None], barrier: Barrier) -> bool:
    """Whether a person who was shown the workspaces `seen` may be given `node`."""
    return not any(related(earlier, node, parents, barrier) for earlier in seen)


def pick(candidates: list[tuple[Node, float, int]], seen: set[Node], refused: set[int],
         parents: Mapping[Node, int | None], barrier: Barrier) -> int | None:
    """The item to give a person: of `candidates` (node, queued at, item id), one they may take and have not
    let go (`refused`): a later step of a node they worked on first, then the longest waiting."""
    allowed = [c for c in candidates if c[2] not in refused and may_take(seen, c[0], parents, barrier)]
    if not allowed:
        return None
    best = min(allowed, key=lambda c: (c[0] not in seen, c[1], c[2]))
    return best[2]
