"""A Jinja2 sandbox whose templates cannot run for ever or fill memory.

Jinja's sandbox stops templates from reaching Python's internals, not from looping 10^10 times
or building a gigabyte string. `render` adds a budget to each rendering:

- **Steps and time.** A trace function (on the rendering thread only) counts the template's own
  lines as they run, loop iterations included, and stops the rendering past `MAX_STEPS` lines or
  `MAX_SECONDS` seconds.
- **Size.** Operations that can multiply a value's size in one step are checked before they run:
  `*`, `**`, `+` and `%` on text, lists and numbers, string methods and filters that pad or repeat
  (`center`, `ljust`, `format`, `replace`, `indent`, ...) with widths over `MAX_CHARS`; every
  value a template holds is checked every few lines, and the output is cut off at `MAX_OUTPUT`.

A template over budget raises `TemplateBudgetError` (one line saying which bound it hit), which
fails that node. The bounds are far above what a scripted human's templates need (a few dozen
lines and characters).
"""

from __future__ import annotations

import functools
import math
import re
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Namespace, _PassArg

MAX_STEPS = 1_000_000
"""Template lines a rendering may run (loop iterations included)."""
MAX_SECONDS = 2.0
"""Seconds a rendering may take."""
MAX_CHARS = 1_000_000
"""Characters (or items) any value built while rendering may hold."""
MAX_OUTPUT = 100_000
"""Characters a rendering may output."""
_CHECK_EVERY = 256  # lines between looks at the clock
_SIZES_EVERY = 4  # lines between looks at the sizes of the template's values
_TEMPLATE_FILE = "<template>"
_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
_WIDTH = re.compile(r"\d+")
_PADDING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap", "truncate", "batch",
                      "slice"})
_FORMATTING = frozenset({"format", "format_map"})


_PASSED = (jinja2.runtime.Context, jinja2.Environment, jinja2.nodes.EvalContext)  # what jinja passes filters


class TemplateBudgetError(Exception):
    """A template went past one of its bounds (steps, time or size)."""


def _size(value: Any) -> int:
    if isinstance(value, Namespace):
        return sum(_size(item) for item in value._Namespace__attrs.values())
    if isinstance(value, _SIZED):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3  # about its decimal digits
    return 0


def _sized(items: Any) -> Any:
    """An iterable without a length (a generator) as a list, counted as it is drawn, so that what it
    would be joined into can be sized first."""
    if isinstance(items, (str, bytes)) or hasattr(items, "__len__") or not hasattr(items, "__iter__"):
        return items
    drawn = []
    for item in items:
        drawn.append(item)
        _check_size(len(drawn), "an iteration")
    return drawn


def _check_size(size: int, what: str) -> None:
    if size > MAX_CHARS:
        raise TemplateBudgetError(f"{what} would hold {size:,} characters or items; templates may build {MAX_CHARS:,}")


def _check_widths(text: Any) -> None:
    """A format string's widths and precisions (`{:>1000000}`, `%1000000d`) are bounded like sizes."""
    if isinstance(text, str):
        for number in _WIDTH.findall(text):
            if len(number) > 7 or int(number) > MAX_CHARS:
                raise TemplateBudgetError(f"the format width {number} is over {MAX_CHARS:,}")


_DYNAMIC_WIDTH = re.compile(r"%[-+ #0]*\*|\.\*|\{[^{}]*:[^{}]*\{")
"""A width or precision taken from the arguments: `%*d`, `%.*s`, `{:>{w}}`."""


def _check_dynamic_widths(text: Any, values: Any) -> None:
    """A format string whose widths come from its arguments: no integer argument may exceed the bound."""
    if isinstance(text, str) and _DYNAMIC_WIDTH.search(text):
        items = list(values.values() if isinstance(values, dict) else values)
        for value in items + [v for item in items if isinstance(item, dict) for v in item.values()]:  # format_map
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_CHARS:
                raise TemplateBudgetError(f"the format width {value} is over {MAX_CHARS:,}")


def _check_fields(text: str, fields: int, values: Any) -> None:
    """A format string with `fields` fields, filled with `values`: its output is bounded before it is made."""
    _check_dynamic_widths(text, values)
    items = values.values() if isinstance(values, dict) else values
    largest = max((_size(value) if isinstance(value, _SIZED) else len(repr(value)) for value in items), default=0)
    _check_size(len(text) + fields * largest, "a formatted string")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _SIZED) and isinstance(times, int):
                _check_size(len(seq) * times, "a repetition")
    elif operator == "+":
        if isinstance(left, _SIZED) and isinstance(right, _SIZED):
            _check_size(len(left) + len(right), "a concatenation")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            digits = right * math.log10(abs(left))
            if digits > MAX_CHARS:
                raise TemplateBudgetError(f"a power with about {digits:,.0f} digits is over {MAX_CHARS:,}")
    elif operator == "%" and isinstance(left, str):
        _check_widths(left)
        _check_fields(left, left.count("%"), right if isinstance(right, (tuple, dict)) else (right,))


def _check_call(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    values = [*args, *kwargs.values()]
    if name in _PADDING:
        for value in values:
            if isinstance(value, int) and not isinstance(value, bool):
                _check_size(value, f"{name}()")
        text, widths = values[0] if values else None, [v for v in values[1:] if isinstance(v, int | str)]
        if name in ("expandtabs", "indent") and isinstance(text, str) and widths:  # every tab or line padded
            pads = text.count("\t" if name == "expandtabs" else "\n") + 1
            width = max(v if isinstance(v, int) else len(v) for v in widths)
            _check_size(len(text) + pads * width, f"{name}()")
    elif name == "translate" and len(values) >= 2 and isinstance(values[0], str) and isinstance(values[1], dict):
        longest = max((len(v) for v in values[1].values() if isinstance(v, str)), default=1)
        _check_size(len(values[0]) * max(longest, 1), "translate()")
    elif name in _FORMATTING:
        for value in values:
            _check_widths(value)
        if values:  # the string, then its arguments (a filter: the same order)
            _check_dynamic_widths(values[0], values[1:])
    elif name == "join" and len(values) >= 2:  # sep.join(items), or the filter: items|join(sep)
        first, second = values[0], values[1]
        sep, items = (first, second) if isinstance(first, str) and not isinstance(second, str) else (second, first)
        if isinstance(sep, str) and hasattr(items, "__len__"):
            _check_size(len(items) * (len(sep) + 1), "join()")
    elif name == "replace" and len(values) >= 3:
        text, old, new = values[0], values[1], values[2]
        if all(isinstance(v, str) for v in (text, old, new)):
            count = len(text) + 1 if old == "" else text.count(old)
            _check_size(len(text) + count * len(new), "replace()")


def _guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter checked like a method call (filters are called directly, not through the sandbox).

    Marked as taking the context, so that Jinja never calls it while compiling (it folds constant
    filter calls such as `{{ 'x'|wordwrap(1) }}` otherwise): compiling runs no template code."""
    passes = _PassArg.from_obj(function)

    @jinja2.pass_context
    @functools.wraps(function)
    def guarded(context: jinja2.runtime.Context, *args: Any, **kwargs: Any) -> Any:
        passed = {_PassArg.context: (context,), _PassArg.eval_context: (context.eval_ctx,),
                  _PassArg.environment: (context.environment,)}.get(passes, ()) if passes else ()
        args = (*passed, *args)
        if name == "join":
            args = tuple(a if isinstance(a, _PASSED) else _sized(a) for a in args)
        plain = [a for a in args if not isinstance(a, _PASSED)]
        _check_call(name, tuple(plain), kwargs)
        if name == "format" and plain:
            _check_widths(plain[0])
        return function(*args, **kwargs)

    return guarded


class BoundedSandbox(SandboxedEnvironment):
    """A `SandboxedEnvironment` that checks, before they run, the operations that can grow a value."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for name, function in list(self.filters.items()):
            self.filters[name] = _guarded_filter(name, function)
        self.globals.pop("lipsum", None)  # lorem ipsum by the million paragraphs: not for a scripted human

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)  # str.format, wrapped when it is looked up
        text = getattr(value, "__self__", None)
        if wrapped is None or not isinstance(text, str):
            return wrapped
        _check_widths(text)

        def bounded(*args: Any, **kwargs: Any) -> str:
            _check_fields(text, text.count("{"), [*args, *kwargs.values()])
            return wrapped(*args, **kwargs)

        return bounded

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(__obj, "__name__", "")
        if name == "join" and args:
            args = (_sized(args[0]), *args[1:])
        _check_call(name, (getattr(__obj, "__self__", None), *args), kwargs)
        return super().call(__context, __obj, *args, **kwargs)


class _Budget:
    """The trace function of one rendering: counts template lines, watches the clock and sizes."""

    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if frame.f_code.co_filename != _TEMPLATE_FILE:
            return None  # only the template's own code is counted (and slowed down)
        return self._line

    def _line(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if event == "line":
            self.steps += 1
            if self.steps % _SIZES_EVERY == 0:  # a value doubled on every line is caught below 2**4 x the bound
                for value in frame.f_locals.values():
                    _check_size(_size(value), "a value")
            if self.steps % _CHECK_EVERY == 0:
                self._check()
        return self._line

    def _check(self) -> None:
        if self.steps > MAX_STEPS:
            raise TemplateBudgetError(f"the template ran over {MAX_STEPS:,} steps (a loop too long?)")
        if time.monotonic() > self.deadline:
            raise TemplateBudgetError(f"the template ran over {MAX_SECONDS:g} s")


def render(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """`template.render(variables)` within the budget; over it, `TemplateBudgetError`.

    Sets a trace function on the calling thread for the duration (a debugger's is restored after).
    """
    budget = _Budget()
    previous = sys.gettrace()
    sys.settrace(budget)
    try:
        parts: list[str] = []
        length = 0
        for part in template.generate(variables):
            length += len(part)
            if length > MAX_OUTPUT:
                raise TemplateBudgetError(f"the template's output is over {MAX_OUTPUT:,} characters")
            parts.append(part)
        return "".join(parts)
    finally:
        sys.settrace(previous)
