"""A loaded trace's policy call, kept as its line of the file until something reads it.

Calls are most of a trace's bytes (each holds the workspace its policy was shown), and loading,
`hch show` and structural checks need only each call's id, kind and workspace. A `LazyCall` is the
call's attribute dict holding just `kind` and `workspace` until any other use: then it parses and
validates its line (the loader's `parse`) and becomes the whole dict, exactly what an eager load
builds. Every dict method (and `in`, iteration, `len`, `==`, `{**call}`, `dict(call)`, pickling)
reads it in full first; only `call["kind"]` and `call["workspace"]` are answered without parsing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Parse = Callable[[bytes], dict[str, Any]]
"""Turns a call's line into its validated attributes (without `id`), or raises `TraceError`."""


class LazyCall(dict[str, Any]):
    """A call's attributes: `kind` and `workspace` now, the rest parsed from `line` on first use."""

    __slots__ = ("_line", "_parse")

    def __init__(self, workspace: int, line: bytes, parse: Parse) -> None:
        dict.__init__(self, kind="call", workspace=workspace)
        self._line: bytes | None = line
        self._parse = parse

    @property
    def loaded(self) -> bool:
        """Whether the line has been parsed (the dict holds every attribute)."""
        return self._line is None

    def load(self) -> None:
        """Parse the line now (a bad line is a `TraceError`; the call stays unread)."""
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


def _reading(name: str) -> Callable[..., Any]:
    method = getattr(dict, name)

    def read_first(self: LazyCall, *args: Any, **kwargs: Any) -> Any:
        for call in (self, *args):  # `a == b`, `a | b`, `a.update(b)`: both sides in full
            if type(call) is LazyCall and call._line is not None:
                call.load()
        return method(self, *args, **kwargs)

    read_first.__name__ = name
    read_first.__doc__ = method.__doc__
    return read_first


for _name in ("get", "__contains__", "keys", "items", "values", "__iter__", "__reversed__", "__len__", "__eq__",
              "__ne__", "__repr__", "copy", "pop", "popitem", "setdefault", "update", "__setitem__", "__delitem__",
              "__or__", "__ior__", "__ror__"):
    setattr(LazyCall, _name, _reading(_name))
