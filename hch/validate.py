"""Checks of values where they enter hch: text that must be valid Unicode, names that must be usable."""

from __future__ import annotations

from typing import Any

import yaml


def unicode_problem(text: str) -> str | None:
    """Why `text` cannot be written as UTF-8, or None.

    Python turns bytes that are not UTF-8 in command-line arguments, file names and terminal
    input into lone surrogates (U+DC80..U+DCFF); no UTF-8 file can hold them, so they are
    refused where they enter rather than when a trace is written.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        if 0xDC80 <= ord(bad) <= 0xDCFF:  # how Python carries a byte that was not UTF-8
            what = f"the byte 0x{ord(bad) - 0xDC00:02x}, which is not UTF-8"
        else:
            what = f"U+{ord(bad):04X} (a lone surrogate)"
        return f"character {exc.start + 1} is {what}"
    return None


class NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases: `*name` can repeat a value exponentially often (a few
    lines that expand to billions of items), so files that people write by hand do without them."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not accepted: write the value out", mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load` without aliases (see `NoAliasLoader`)."""
    return yaml.load(text, Loader=NoAliasLoader)  # a SafeLoader: builds plain data only


def valid_text(text: str) -> str:
    """`text` with anything UTF-8 cannot hold (lone surrogates) written as a backslash escape,
    for messages hch composes from outside text (an exception's message) rather than refusing them."""
    return text if unicode_problem(text) is None else text.encode("utf-8", "backslashreplace").decode("utf-8")
