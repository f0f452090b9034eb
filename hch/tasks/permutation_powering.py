"""Permutation powering: sigma^k(x) for a random permutation sigma, needing floor(log2 k) levels."""

from __future__ import annotations

import random
from functools import lru_cache

from hch.tasks.base import NAMES, Instance, Task

HEADER = "Permutation powering: sigma is a permutation of the names below; each line is a fact \"x -> sigma(x)\"."
SAMPLES_PER_DEPTH = 40


def question(k: int, x: str) -> str:
    return f"What is sigma^{k}({x})?"


def required_depth(k: int) -> int:
    """floor(log2 k): sigma^k is two sigma^(k//2) look-ups (and one sigma^1 if k is odd)."""
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
)
