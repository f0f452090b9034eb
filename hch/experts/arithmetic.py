"""Arithmetic experts: list reductions and nested expressions, two numbers at a time.

H can combine only two numbers at once, so "the sum of eight numbers" is split into the
sums of two halves, and "(3 + 4) * (10 - 2 * 3)" into its operands, along the parse tree.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from fractions import Fraction

from hch.errors import PolicyError
from hch.experts.base import combined, delegate, format_number, number_of, rng_for
from hch.workspace import Action, Answer, Workspace

Op = Callable[[Fraction, Fraction], Fraction]

REDUCTIONS: dict[str, Op] = {"sum": operator.add, "product": operator.mul, "maximum": max, "minimum": min}
ALIASES = {"max": "maximum", "min": "minimum"}
NUMBER = r"-?\d+(?:\.\d+)?"
LIST_QUESTION = re.compile(
    rf"^\s*(?:what\s+is\s+)?the\s+(sum|product|maximum|minimum|max|min)\s+of\s+"
    rf"((?:{NUMBER})(?:\s*(?:,|and|,\s*and)\s*{NUMBER})*)\s*[?.]?\s*$",
    re.IGNORECASE,
)


def parse_list(question: str) -> tuple[str, list[Fraction]] | None:
    """("sum", [3, 1, 4]) for "What is the sum of 3, 1, 4?", else None."""
    match = LIST_QUESTION.match(question)
    if match is None:
        return None
    op = match.group(1).lower()
    try:
        return ALIASES.get(op, op), [Fraction(n) for n in re.findall(NUMBER, match.group(2))]
    except ValueError:  # a number of over 4,300 digits, which Python will not read: not a question it knows
        return None


def list_question(op: str, numbers: list[Fraction]) -> str:
    return f"What is the {op} of {', '.join(format_number(n) for n in numbers)}?"


def list_depth(count: int) -> int:
    """Depth HCH needs for a list of `count` numbers: 0 for two, one more each time it doubles.
    Only the `early_guess` variant looks at it."""
    return max(0, (count - 1).bit_length() - 1)


class ListExpert:
    """Sum, product, maximum or minimum of a list of numbers, split into halves wherever it may ask.

    A half that came back a guess makes the combination a guess. (The depth a list needs shows in
    its length: the `early_guess` variant guesses at once below it.)"""

    name = "list"
    version = 3
    forms: tuple[str, ...] = ("What is the sum of 3, 1, 4, 1, 5? (also product, maximum, minimum)",)

    def knows(self, question: str, context: str) -> bool:
        return parse_list(question) is not None

    def act(self, workspace: Workspace) -> Action:
        op, numbers = self._parsed(workspace)
        reduce = REDUCTIONS[op]
        if len(numbers) <= 2:
            value = numbers[0] if len(numbers) == 1 else reduce(numbers[0], numbers[1])
            return Answer(answer=format_number(value))
        subs = workspace.answers
        if len(subs) == 2:
            return combined(format_number(reduce(number_of(subs[0]), number_of(subs[1]))), subs)
        half = (len(numbers) + 1) // 2
        halves = [list_question(op, numbers[:half]), list_question(op, numbers[half:])]
        return delegate(workspace, halves, self.estimate(op, numbers, workspace.question))

    def guess(self, workspace: Workspace) -> Answer:
        op, numbers = self._parsed(workspace)
        return Answer(answer=self.estimate(op, numbers, workspace.question), guess=True)

    def short(self, workspace: Workspace) -> bool:
        return workspace.depth < list_depth(len(self._parsed(workspace)[1]))

    @staticmethod
    def _parsed(workspace: Workspace) -> tuple[str, list[Fraction]]:
        parsed = parse_list(workspace.question)
        if parsed is None:
            raise PolicyError(f"not a list question: {workspace.question!r}")
        return parsed

    @staticmethod
    def estimate(op: str, numbers: list[Fraction], question: str) -> str:
        """An unaided estimate: the operation on two numbers picked at random, scaled for a sum."""
        rng = rng_for("list", question)
        a, b = rng.sample(numbers, 2)
        value = REDUCTIONS[op](a, b)
        return format_number(value * len(numbers) / 2 if op == "sum" else value)


BINARY: dict[type[ast.operator], tuple[str, Op]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
}
EXPRESSION_QUESTION = re.compile(r"^\s*(?:what\s+is|compute|calculate|evaluate)?\s*(.+?)\s*[?=]?\s*$", re.IGNORECASE)


def parse_expression(question: str) -> ast.expr | None:
    """The expression in "What is (3 + 4) * 2?" (numbers, + - * / and parentheses only), else None."""
    match = EXPRESSION_QUESTION.match(question)
    if match is None or not re.fullmatch(r"[\d\s.+\-*/()]+", match.group(1)):
        return None
    try:
        tree = ast.parse(match.group(1), mode="eval").body
    except SyntaxError:
        return None
    return tree if _is_arithmetic(tree) else None


def _is_arithmetic(node: ast.expr) -> bool:
    if isinstance(node, ast.BinOp):
        return type(node.op) in BINARY and _is_arithmetic(node.left) and _is_arithmetic(node.right)
    return literal(node) is not None


def literal(node: ast.expr) -> Fraction | None:
    """The value of a number literal (possibly negated), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = literal(node.operand)
        return -inner if inner is not None else None
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))
    return None


def required_depth(node: ast.expr) -> int:
    """Depth HCH needs: 0 for one operation on two numbers, one more per level of nesting.
    Only the `early_guess` variant looks at it."""
    if not isinstance(node, ast.BinOp):
        return 0
    inner = [required_depth(side) + 1 for side in (node.left, node.right) if isinstance(side, ast.BinOp)]
    return max(inner, default=0)


class ExpressionExpert:
    """Nested arithmetic over + - * /, decomposed along the parse tree wherever it may ask (the
    `early_guess` variant guesses at once when its depth is short of the expression's nesting)."""

    name = "expression"
    version = 3
    forms: tuple[str, ...] = ("What is (3 + 4) * (10 - 2 * 3)?",)

    def knows(self, question: str, context: str) -> bool:
        return parse_expression(question) is not None

    def act(self, workspace: Workspace) -> Action:
        tree = self._parsed(workspace)
        value = literal(tree)
        if value is not None:
            return Answer(answer=format_number(value))
        assert isinstance(tree, ast.BinOp)
        sides = [tree.left, tree.right]
        open_sides = [side for side in sides if literal(side) is None]
        subs = workspace.answers
        if len(subs) == len(open_sides):
            known = iter([number_of(sub) for sub in subs])
            a, b = (value if value is not None else next(known) for value in map(literal, sides))
            return combined(format_number(apply(tree.op, a, b)), subs)
        questions = [f"What is {ast.unparse(side)}?" for side in open_sides]
        return delegate(workspace, questions, self.estimate(tree, workspace.question))

    def guess(self, workspace: Workspace) -> Answer:
        tree = self._parsed(workspace)
        if not isinstance(tree, ast.BinOp):
            return Answer(answer=format_number(literal(tree) or Fraction(0)))
        return Answer(answer=self.estimate(tree, workspace.question), guess=True)

    def short(self, workspace: Workspace) -> bool:
        return workspace.depth < required_depth(self._parsed(workspace))

    @staticmethod
    def _parsed(workspace: Workspace) -> ast.expr:
        tree = parse_expression(workspace.question)
        if tree is None:
            raise PolicyError(f"not an arithmetic expression: {workspace.question!r}")
        return tree

    @staticmethod
    def estimate(tree: ast.BinOp, question: str) -> str:
        """An unaided estimate: the top operation with unknown operands replaced by a small random number."""
        rng = rng_for("expression", question)
        values = [literal(side) for side in (tree.left, tree.right)]
        a, b = (Fraction(rng.randint(1, 10)) if value is None else value for value in values)
        return format_number(apply(tree.op, a, b))


def apply(op: ast.operator, a: Fraction, b: Fraction) -> Fraction:
    """One binary operation; division by zero fails the node."""
    _, function = BINARY[type(op)]
    try:
        return function(a, b)
    except ZeroDivisionError:
        raise PolicyError("division by zero") from None
