"""Permutation powering: sigma^k(x) for a random permutation sigma, needing floor(log2 k) levels."""

from __future__ import annotations

import random
import re
from functools import lru_cache

from hch.tasks.base import NAMES, Instance, Task

HEADER = "Permutation powering: sigma is a permutation of the names below; each line is a fact \"x -> sigma(x)\"."
SAMPLES_PER_DEPTH = 40
QUESTION = re.compile(r"^\s*what\s+is\s+sigma\^(\d+)\(\s*([a-h]{2})\s*\)\s*\??\s*$", re.IGNORECASE)
PRIMITIVES = ("What is sigma^1(ab)?", "What is sigma^0(ab)?")


def question(k: int, x: str) -> str:
    return f"What is sigma^{k}({x})?"


def parse_question(text: str) -> tuple[int, str] | None:
    """(k, x) for "What is sigma^k(x)?", else None."""
    match = QUESTION.match(text)
    return (int(match[1]), match[2].lower()) if match else None


def required_depth(k: int) -> int:
    """floor(log2 k): sigma^k is two sigma^(k//2) look-ups (and one sigma^1 if k is odd). The same
    with facts hidden: a look-up (k <= 1) is then the environment's answer instead of H's."""
    return max(k.bit_length() - 1, 0)


@lru_cache(maxsize=64)
def parse(context: str) -> dict[str, str]:
    """The facts of a context as a map x -> sigma(x)."""
    sigma: dict[str, str] = {}
    for line in context.splitlines()[1:]:
        left, sep, right = line.partition("->")
        if sep:
            sigma[left.strip()] = right.strip()
    return sigma


def oracle(context: str, text: str) -> str | None:
    """The environment: sigma^1(x) and sigma^0(x) from the facts; None for any other question."""
    parsed = parse_question(text)
    if parsed is None or parsed[0] > 1:
        return None
    k, x = parsed
    sigma = parse(context)
    if x not in sigma:
        return None
    return sigma[x] if k == 1 else x


def power(sigma: dict[str, str], x: str, k: int) -> str:
    for _ in range(k):
        x = sigma[x]
    return x


def make_instance(rng: random.Random, top: int) -> Instance:
    images = NAMES[:]
    rng.shuffle(images)
    sigma = dict(zip(NAMES, images, strict=True))
    instance = Instance("\n".join([HEADER, *(f"{x} -> {y}" for x, y in sigma.items())]))
    for depth in range(min(top, 5) + 1):
        for _ in range(SAMPLES_PER_DEPTH):
            k, x = rng.randrange(2**depth, 2 ** (depth + 1)), rng.choice(NAMES)
            instance.add(depth, question(k, x), power(sigma, x, k))
    return instance


TASK = Task(
    name="permutation-powering",
    description="sigma^k(x) for a random permutation of 64 names; needs floor(log2 k) levels (k < 64)",
    depths=(0, 5),
    make_instance=make_instance,
    header=HEADER,
    primitives=PRIMITIVES,
    oracle=oracle,
)
