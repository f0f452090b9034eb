"""Arithmetic: sums, maxima and minima of lists, answered by the built-in list expert."""

from __future__ import annotations

import functools
import random
from fractions import Fraction

from hch.experts.arithmetic import REDUCTIONS, list_question
from hch.experts.base import format_number
from hch.tasks.base import Instance, Task

OPS = ("sum", "maximum", "minimum")
SAMPLES_PER_DEPTH = 20


def make_instance(rng: random.Random, top: int) -> Instance:
    instance = Instance("")
    for depth in range(min(top, 6) + 1):
        for _ in range(SAMPLES_PER_DEPTH):
            length = rng.randint(2**depth + 1, 2 ** (depth + 1)) if depth else 2
            numbers = [Fraction(rng.randint(1, 99)) for _ in range(length)]
            op = rng.choice(OPS)
            value = functools.reduce(REDUCTIONS[op], numbers)
            instance.add(depth, list_question(op, numbers), format_number(value))
    return instance


TASK = Task(
    name="arithmetic",
    description="sum, maximum or minimum of 2 to 128 numbers; needs ceil(log2 n) - 1 levels",
    depths=(0, 6),
    make_instance=make_instance,
)
