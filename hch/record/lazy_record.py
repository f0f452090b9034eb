"""A loaded trace's record, kept as its line of the file until something reads it.

Loading, `hch show` and the structural checks need little of each record: a call's id, kind and
workspace, a workspace's id, kind and depth. A `LazyRecord` is a node's attribute dict holding just
those until any other use: then it parses and validates its line (the loader's `parse`) and becomes
the whole dict, exactly what an eager load builds. Every dict method (and `in`, iteration, `len`, `==`,
`{**record}`, `dict(record)`, pickling) reads it in full first; only the keys given when it was made
(`call["kind"]`, `call["workspace"]`, `workspace["depth"]`) are answered without parsing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Parse = Callable[[bytes], dict[str, Any]]
"""Turns a record's line into its validated attributes (without `id`), or raises `TraceError`."""


_init = dict.__init__  # a loader makes 10^5 of them: one look-up fewer each


class LazyRecord(dict[str, Any]):
    """A node's attributes: a few now, the rest parsed from `line` on first use."""

    __slots__ = ("_line", "_parse")

    def __init__(self, known: dict[str, Any], line: bytes, parse: Parse) -> None:
        dict.__init__(self, known)
        self._line: bytes | None = line
        self._parse = parse

    @property
    def loaded(self) -> bool:
        """Whether the line has been parsed (the dict holds every attribute)."""
        return self._line is None

    def load(self) -> None:
        """Parse the line now (a bad line is a `TraceError`; the record stays unread)."""
        line = self._line
        if line is not None:
            attrs = self._parse(line)
            dict.clear(self)
            dict.update(self, attrs)
            self._line = None

    def __missing__(self, key: str) -> Any:
        if self._line is None:
            raise KeyError(key)
        self.load()
        return dict.__getitem__(self, key)

    def __reduce__(self) -> tuple[Any, ...]:
        self.load()
        return dict, (dict(dict.items(self)),)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return self.__reduce__()


class LazyCall(LazyRecord):
    """A policy call: `kind` and `workspace` now."""

    __slots__ = ()

    def __init__(self, workspace: int, line: bytes, parse: Parse) -> None:
        _init(self, kind="call", workspace=workspace)
        self._line = line
        self._parse = parse


class LazyWorkspace(LazyRecord):
    """A workspace: `kind` and `depth` now."""

    __slots__ = ()

    def __init__(self, depth: int, line: bytes, parse: Parse) -> None:
        _init(self, kind="workspace", depth=depth)
        self._line = line
        self._parse = parse


def _reading(name: str) -> Callable[..., Any]:
    method = getattr(dict, name)

    def read_first(self: LazyRecord, *args: Any, **kwargs: Any) -> Any:
        for record in (self, *args):  # `a == b`, `a | b`, `a.update(b)`: both sides in full
            if isinstance(record, LazyRecord) and record._line is not None:
                record.load()
        return method(self, *args, **kwargs)

    read_first.__name__ = name
    read_first.__doc__ = method.__doc__
    return read_first


for _name in ("get", "__contains__", "keys", "items", "values", "__iter__", "__reversed__", "__len__", "__eq__",
              "__ne__", "__repr__", "copy", "pop", "popitem", "setdefault", "update", "__setitem__", "__delitem__",
              "__or__", "__ior__", "__ror__"):
    setattr(LazyRecord, _name, _reading(_name))
