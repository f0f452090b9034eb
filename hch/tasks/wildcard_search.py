"""Wildcard search: the summed values of the strings matching a pattern; one level per wildcard."""

from __future__ import annotations

import itertools
import random
import re
from functools import lru_cache

from hch.tasks.base import Instance, Task

HEADER = "Wildcard search: each line is a string over {a, b} and its value; strings not listed have value 0."
LENGTH = 6
SAMPLES_PER_DEPTH = 30
QUESTION = re.compile(
    rf"^\s*what\s+is\s+the\s+sum\s+of\s+the\s+values\s+of\s+the\s+strings\s+matching\s+([ab*]{{{LENGTH}}})\s*\??\s*$",
    re.IGNORECASE,
)
PRIMITIVES = ("What is the sum of the values of the strings matching abbaba? (a pattern without wildcards)",)


def question(pattern: str) -> str:
    return f"What is the sum of the values of the strings matching {pattern}?"


def parse_question(text: str) -> str | None:
    """The pattern of a wildcard-search question, else None."""
    match = QUESTION.match(text)
    return match[1].lower() if match else None


def oracle(context: str, text: str) -> str | None:
    """The environment: the value of one string (a pattern without wildcards); None otherwise."""
    pattern = parse_question(text)
    if pattern is None or "*" in pattern:
        return None
    return str(parse(context).get(pattern, 0))


@lru_cache(maxsize=64)
def parse(context: str) -> dict[str, int]:
    """The facts of a context as a map string -> value."""
    values: dict[str, int] = {}
    for line in context.splitlines()[1:]:
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = int(value)
    return values


def total(values: dict[str, int], pattern: str) -> int:
    options = [("a", "b") if c == "*" else (c,) for c in pattern]
    return sum(values.get("".join(chars), 0) for chars in itertools.product(*options))


def make_instance(rng: random.Random, top: int) -> Instance:
    strings = ["".join(chars) for chars in itertools.product("ab", repeat=LENGTH)]
    values = {s: rng.choice((1, -1)) for s in strings if rng.random() < 0.75}
    instance = Instance("\n".join([HEADER, *(f"{s}: {v:+d}" for s, v in values.items())]))
    for wildcards in range(min(top, LENGTH) + 1):
        for _ in range(SAMPLES_PER_DEPTH):
            stars = set(rng.sample(range(LENGTH), wildcards))
            pattern = "".join("*" if i in stars else rng.choice("ab") for i in range(LENGTH))
            instance.add(wildcards, question(pattern), str(total(values, pattern)))
    return instance


TASK = Task(
    name="wildcard-search",
    description="sum of the values of the 6-letter strings matching a pattern; one level per wildcard",
    depths=(0, LENGTH),
    make_instance=make_instance,
    header=HEADER,
    primitives=PRIMITIVES,
    oracle=oracle,
)
