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
VALUE_QUESTION = re.compile(r"^\s*what\s+is\s+the\s+value\s+of\s+([a-h]{2})\s*\??\s*$", re.IGNORECASE)
OPERAND_QUESTION = re.compile(
    r"^\s*what\s+is\s+the\s+(first|second)\s+operand\s+of\s+([a-h]{2})\s*\??\s*$", re.IGNORECASE
)
ROW_QUESTION = re.compile(r"^\s*what\s+is\s+f\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*\??\s*$", re.IGNORECASE)
CONSTANT_OPERAND = "none (a constant)"
"""The answer to "What is the first operand of x?" when x is a constant."""
PRIMITIVES = (
    "What is the first operand of ab? (or second)", "What is the value of ab? (ab a constant)", "What is f(3, 5)?",
)


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


def oracle(context: str, text: str) -> str | None:
    """The environment: an operand of x, a constant's value, a row of f; None for anything else
    (including the value of a variable that is not a constant)."""
    program = parse(context)
    if match := OPERAND_QUESTION.match(text):
        x = match[2].lower()
        if x in program.constants:
            return CONSTANT_OPERAND
        operands = program.operands.get(x)
        return None if operands is None else operands[0 if match[1].lower() == "first" else 1]
    if match := VALUE_QUESTION.match(text):
        value = program.constants.get(match[1].lower())
        return None if value is None else str(value)
    if match := ROW_QUESTION.match(text):
        row = program.table.get((int(match[1]), int(match[2])))
        return None if row is None else str(row)
    return None


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
    header=HEADER,
    primitives=PRIMITIVES,
    oracle=oracle,
)
