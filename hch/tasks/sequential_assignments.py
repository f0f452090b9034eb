"""Sequential assignments: x := f(y, z) over earlier variables; a variable needs its depth in the graph."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from hch.tasks.base import NAMES, Instance, Task

HEADER = (
    "Sequential assignments: each variable is a constant or f of two earlier variables; "
    "values are 0 to 7 and f's table follows the variables."
)
VALUES = 8
CONSTANTS = 8  # about sqrt(64) constants, as in the paper
RECENT = 3  # the first operand is one of the last few variables, so chains get deep
ASSIGNMENT = re.compile(r"^([a-h]{2}) = f\(([a-h]{2}), ([a-h]{2})\)$")
CONSTANT = re.compile(r"^([a-h]{2}) = (\d+)$")
ROW = re.compile(r"^f\((\d+), (\d+)\) = (\d+)$")


@dataclass(frozen=True)
class Program:
    """The facts of an instance."""

    constants: dict[str, int]
    operands: dict[str, tuple[str, str]]
    table: dict[tuple[int, int], int]

    def value(self, x: str) -> int:
        if x in self.constants:
            return self.constants[x]
        y, z = self.operands[x]
        return self.table[self.value(y), self.value(z)]

    def depth(self, x: str) -> int:
        if x in self.constants:
            return 0
        return 1 + max(self.depth(y) for y in self.operands[x])


def value_question(x: str) -> str:
    return f"What is the value of {x}?"


def operand_question(which: str, x: str) -> str:
    return f"What is the {which} operand of {x}?"


def table_question(a: int, b: int) -> str:
    return f"What is f({a}, {b})?"


@lru_cache(maxsize=64)
def parse(context: str) -> Program:
    program = Program({}, {}, {})
    for line in context.splitlines()[1:]:
        if match := ASSIGNMENT.match(line):
            program.operands[match[1]] = (match[2], match[3])
        elif match := CONSTANT.match(line):
            program.constants[match[1]] = int(match[2])
        elif match := ROW.match(line):
            program.table[int(match[1]), int(match[2])] = int(match[3])
    return program


def make_instance(rng: random.Random, top: int) -> Instance:
    names = NAMES[:]
    rng.shuffle(names)
    program = Program({}, {}, {(a, b): rng.randrange(VALUES) for a in range(VALUES) for b in range(VALUES)})
    lines = [HEADER]
    for i, x in enumerate(names):
        if i < CONSTANTS:
            program.constants[x] = rng.randrange(VALUES)
            lines.append(f"{x} = {program.constants[x]}")
        else:
            y, z = rng.choice(names[max(0, i - RECENT) : i]), rng.choice(names[:i])
            program.operands[x] = (y, z)
            lines.append(f"{x} = f({y}, {z})")
    lines += [f"f({a}, {b}) = {v}" for (a, b), v in program.table.items()]
    instance = Instance("\n".join(lines))
    for x in names:
        depth = program.depth(x)
        if depth <= top:
            instance.add(depth, value_question(x), str(program.value(x)))
    return instance


TASK = Task(
    name="sequential-assignments",
    description="the value of a variable x := f(y, z); needs the variable's depth in the assignment graph",
    depths=(0, 6),
    make_instance=make_instance,
)
