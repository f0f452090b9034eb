"""YAML that people write by hand (presets, scripts), read into plain data only and without aliases.

Apart from `hch.validate` so that reading traces and JSON does not import the YAML parser.
"""

from __future__ import annotations

from typing import Any

import yaml


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

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # over the 4,300 digits Python converts: a YAML error like any other
            raise yaml.constructor.ConstructorError(
                None, None, f"the number {node.value[:20]}... has too many digits", node.start_mark
            ) from None


NoAliasLoader.add_constructor("tag:yaml.org,2002:int", NoAliasLoader.construct_yaml_int)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load` without aliases (see `NoAliasLoader`)."""
    return yaml.load(text, Loader=NoAliasLoader)  # a SafeLoader: builds plain data only
