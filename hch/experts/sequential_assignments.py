"""The sequential-assignments expert: look up x's operands, evaluate them, then look up f's row."""

from __future__ import annotations

import random
import re

from hch.errors import PolicyError
from hch.experts.base import combined, rng_for
from hch.tasks.base import NAMES, header
from hch.tasks.sequential_assignments import (
    HEADER,
    VALUES,
    Program,
    operand_question,
    parse,
    table_question,
    value_question,
)
from hch.workspace import Action, Answer, Ask, SubAnswer, Workspace

VALUE = re.compile(r"^\s*what\s+is\s+the\s+value\s+of\s+([a-h]{2})\s*\??\s*$", re.IGNORECASE)
OPERAND = re.compile(r"^\s*what\s+is\s+the\s+(first|second)\s+operand\s+of\s+([a-h]{2})\s*\??\s*$", re.IGNORECASE)
ROW = re.compile(r"^\s*what\s+is\s+f\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*\??\s*$", re.IGNORECASE)


def text_of(sub: SubAnswer) -> str:
    if sub.status == "error":
        raise PolicyError(f"subquestion {sub.question!r} failed: {sub.answer}")
    return sub.answer.strip().lower()


def value_of(sub: SubAnswer) -> int:
    text = text_of(sub)
    if not text.isdigit() or int(text) >= VALUES:
        raise PolicyError(f"subquestion {sub.question!r} answered {sub.answer!r}, not a value 0 to {VALUES - 1}")
    return int(text)


def guess(workspace: Workspace) -> Answer:
    """A value drawn from a generator seeded by the question, marked as a guess."""
    rng = rng_for(SequentialAssignmentsExpert.name, workspace.question, workspace.context)
    return Answer(answer=str(rng.randrange(VALUES)), guess=True)


class SequentialAssignmentsExpert:
    """Primitive look-ups: a constant's value, a variable's operands, a row of f. A value of a
    variable x := f(y, z) takes three steps: both operands, both values, then f's row. It guesses
    at once when it sees it cannot finish: with one level left (depth 1) its helpers can only look
    up, so an operand that is not a constant (one look-up) cannot be valued; and an operand's value
    that came back a guess leaves nothing exact to look up in f's table."""

    name = "sequential-assignments"
    version = 2
    forms: tuple[str, ...] = ("What is the value of ab? / What is the first operand of ab? / What is f(3, 5)? "
             "(with a sequential-assignments context)",)

    def knows(self, question: str, context: str) -> bool:
        return header(context) == HEADER and any(form.match(question) for form in (VALUE, OPERAND, ROW))

    def act(self, workspace: Workspace) -> Action:
        program = parse(workspace.context)
        text = workspace.question
        if match := ROW.match(text):
            row = (int(match[1]), int(match[2]))
            if row not in program.table:
                raise PolicyError(f"f{row} is not in the table")
            return Answer(answer=str(program.table[row]))
        if match := OPERAND.match(text):
            x = match[2].lower()
            if x in program.constants:
                return Answer(answer="none (a constant)")
            if x not in program.operands:
                raise PolicyError(f"{x} is not a variable of this program")
            return Answer(answer=program.operands[x][0 if match[1].lower() == "first" else 1])
        match = VALUE.match(text)
        if match is None:
            raise PolicyError(f"not a sequential-assignments question: {text!r}")
        x = match[1].lower()
        if x in program.constants:
            return Answer(answer=str(program.constants[x]))
        if x not in program.operands:
            raise PolicyError(f"{x} is not a variable of this program")
        if not workspace.can_ask or workspace.refusal:
            return guess(workspace)
        return self.step(x, program, workspace)

    @staticmethod
    def step(x: str, program: Program, workspace: Workspace) -> Action:
        steps = workspace.steps
        if not steps:
            return Ask(questions=[operand_question("first", x), operand_question("second", x)])
        y, z = (text_of(sub) for sub in steps[0])
        for name in (y, z):
            if name not in NAMES:
                raise PolicyError(f"an operand of {x} was given as {name!r}, not a variable")
        if len(steps) == 1:
            if workspace.depth <= 1 and not {y, z} <= program.constants.keys():
                return guess(workspace)
            return Ask(questions=[value_question(y)] if y == z else [value_question(y), value_question(z)])
        if any(sub.status == "guess" for sub in steps[1]):
            return guess(workspace)
        vy, vz = value_of(steps[1][0]), value_of(steps[1][-1])
        if len(steps) == 2:
            return Ask(questions=[table_question(vy, vz)])
        return combined(str(value_of(steps[2][0])), workspace.answers)

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong look-up: another value, or another variable for an operand."""
        if OPERAND.match(workspace.question):
            return rng.choice([n for n in NAMES if n != answer.strip()])
        return str(rng.choice([v for v in range(VALUES) if str(v) != answer.strip()]))
