"""The questions on a node's path from the root, as a persistent map (for marking cycles).

Each node needs its ancestors' questions (a node repeating one is marked `cycle_of` it), and
concurrent siblings each extend their parent's map with themselves. Copying a dict per node costs
O(depth) memory per node, O(n^2) for a chain of n nodes (16,000 nodes took 3.7 GB). `Ancestry`
shares structure instead: it is a `contextvars.Context`, CPython's persistent hash array mapped
trie, with one `ContextVar` per distinct question as the key, so adding a question copies
O(log n) of the trie and a chain of n nodes holds O(n log n) memory.
"""

from __future__ import annotations

from contextvars import Context, ContextVar


class Ancestry:
    """An immutable map from (normalized) question to the ancestor node that asked it."""

    __slots__ = ("_context", "_keys")

    def __init__(self, keys: dict[str, ContextVar[int]] | None = None, context: Context | None = None) -> None:
        self._keys: dict[str, ContextVar[int]] = {} if keys is None else keys  # shared by a whole run
        self._context = Context() if context is None else context

    def get(self, question: str) -> int | None:
        """The ancestor node with this question, or None."""
        key = self._keys.get(question)
        return None if key is None else self._context.get(key)

    def with_node(self, question: str, node: int) -> Ancestry:
        """This map plus `question` -> `node` (replacing an ancestor's with the same question)."""
        key = self._keys.get(question)
        if key is None:
            key = self._keys[question] = ContextVar("question")
        context = self._context.copy()
        context.run(key.set, node)
        return Ancestry(self._keys, context)

    def __len__(self) -> int:
        return len(self._context)
