"""The sequential-assignments expert: look up x's operands, evaluate them, then look up f's row."""

from __future__ import annotations

import random

from hch.errors import PolicyError
from hch.experts.base import combined, facts_in_view, look_up, rng_for
from hch.tasks.base import NAMES, header
from hch.tasks.sequential_assignments import (
    CONSTANT_OPERAND,
    HEADER,
    OPERAND_QUESTION,
    ROW_QUESTION,
    VALUE_QUESTION,
    VALUES,
    operand_question,
    oracle,
    parse,
    table_question,
    value_question,
)
from hch.workspace import Action, Answer, Ask, SubAnswer, Workspace


def text_of(sub: SubAnswer) -> str:
    if sub.status == "error":
        raise PolicyError(f"subquestion {sub.question!r} failed: {sub.answer}")
    return sub.answer.strip().lower()


def value_of(sub: SubAnswer) -> int:
    text = text_of(sub)
    if not text.isdigit() or int(text) >= VALUES:
        raise PolicyError(f"subquestion {sub.question!r} answered {sub.answer!r}, not a value 0 to {VALUES - 1}")
    return int(text)


class SequentialAssignmentsExpert:
    """Primitive look-ups: a constant's value, a variable's operands, a row of f (read from the facts
    when it is shown them; with facts hidden the environment answers them). A value of a variable
    x := f(y, z) takes three steps, wherever it may ask: both operands, both values, then f's row.
    An operand's value that came back a guess leaves nothing exact to look up in f's table, so it
    passes a guess up. (The `early_guess` variant, shown the facts, also guesses at once with one
    level left when an operand is not a constant.)"""

    name = "sequential-assignments"
    version = 3
    forms: tuple[str, ...] = ("What is the value of ab? / What is the first operand of ab? / What is f(3, 5)? "
             "(with a sequential-assignments context)",)

    def knows(self, question: str, context: str) -> bool:
        forms = (VALUE_QUESTION, OPERAND_QUESTION, ROW_QUESTION)
        return header(context) == HEADER and any(form.match(question) for form in forms)

    def act(self, workspace: Workspace) -> Action:
        text = workspace.question
        if ROW_QUESTION.match(text) or OPERAND_QUESTION.match(text):
            return look_up(workspace, oracle)
        match = VALUE_QUESTION.match(text)
        if match is None:
            raise PolicyError(f"not a sequential-assignments question: {text!r}")
        x = match[1].lower()
        if facts_in_view(workspace.context):
            program = parse(workspace.context)
            if x in program.constants:
                return Answer(answer=str(program.constants[x]))
            if x not in program.operands:
                raise PolicyError(f"{x} is not a variable of this program")
        return self.step(x, workspace)

    def step(self, x: str, workspace: Workspace) -> Action:
        steps = workspace.steps
        if len(steps) == 3:
            return combined(str(value_of(steps[2][0])), workspace.answers)
        if len(steps) == 2 and any(sub.status == "guess" for sub in steps[1]):
            return self.guess(workspace)
        if not workspace.can_ask or workspace.refusal:
            return self.guess(workspace)
        if not steps:
            return Ask(questions=[operand_question("first", x), operand_question("second", x)])
        y, z = self.operands(x, steps[0])
        if len(steps) == 1:
            return Ask(questions=[value_question(y)] if y == z else [value_question(y), value_question(z)])
        return Ask(questions=[table_question(value_of(steps[1][0]), value_of(steps[1][-1]))])

    @staticmethod
    def operands(x: str, step: tuple[SubAnswer, ...]) -> tuple[str, str]:
        y, z = (text_of(sub) for sub in step)
        if CONSTANT_OPERAND in (y, z):
            raise PolicyError(f"{x} is a constant, but its value was not given")
        for name in (y, z):
            if name not in NAMES:
                raise PolicyError(f"an operand of {x} was given as {name!r}, not a variable")
        return y, z

    def guess(self, workspace: Workspace) -> Answer:
        """A value drawn from a generator seeded by the question, marked as a guess."""
        rng = rng_for(self.name, workspace.question, workspace.context)
        return Answer(answer=str(rng.randrange(VALUES)), guess=True)

    def short(self, workspace: Workspace) -> bool:
        if len(workspace.steps) != 1 or workspace.depth > 1 or not facts_in_view(workspace.context):
            return False
        match = VALUE_QUESTION.match(workspace.question)
        assert match is not None  # only a value question asks
        y, z = self.operands(match[1].lower(), workspace.steps[0])
        return not {y, z} <= parse(workspace.context).constants.keys()

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong look-up: another value, or another variable for an operand."""
        if OPERAND_QUESTION.match(workspace.question):
            return rng.choice([n for n in NAMES if n != answer.strip()])
        return str(rng.choice([v for v in range(VALUES) if str(v) != answer.strip()]))
