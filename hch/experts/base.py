"""What an expert is, and the helpers experts share."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from fractions import Fraction
from typing import Protocol

from hch.errors import PolicyError
from hch.workspace import Action, Answer, Ask, SubAnswer, Workspace


class Expert(Protocol):
    """A hand-written H for some question forms. Stateless: it decides from the workspace alone."""

    name: str
    """Short name, part of the expert policy's fingerprint."""
    version: int
    """Bumped whenever the expert's behaviour changes, so old cached calls are not reused."""
    forms: tuple[str, ...]
    """Examples of the question forms it knows, shown when a question is not understood."""

    def knows(self, question: str, context: str) -> bool:
        """Whether the question is one of this expert's forms."""
        ...

    def act(self, workspace: Workspace) -> Action:
        """Answer, decompose wherever it may ask, or guess where it may not (depth 0, no steps
        left, after a refusal); it never uses the depth a question needs."""
        ...

    def guess(self, workspace: Workspace) -> Answer:
        """Its best unaided answer, marked as a guess."""
        ...

    def short(self, workspace: Workspace) -> bool:
        """The `early_guess` variant's rule, consulted only where `act` would ask: whether the question
        shows it needs more levels than this node has (from the question and what it learned so far),
        so that the variant guesses at once instead of delegating to copies that could only guess."""
        ...


def rng_for(*parts: str) -> random.Random:
    """A generator seeded by text, so a guess is the same every time it is made."""
    seed = hashlib.sha256("\x00".join(parts).encode()).digest()
    return random.Random(int.from_bytes(seed[:8], "big"))


def facts_in_view(context: str) -> bool:
    """Whether a workspace shows the task's facts (facts shown) or only its header line (facts hidden)."""
    return "\n" in context.strip()


def look_up(workspace: Workspace, oracle: Callable[[str, str], str | None]) -> Answer:
    """A primitive question answered from the facts in view (with facts hidden, the environment
    answers these before any policy is called, so reaching here without facts is a misuse)."""
    if not facts_in_view(workspace.context):
        raise PolicyError(f"{workspace.question!r} is a look-up in the facts, which this node is not shown")
    found = oracle(workspace.context, workspace.question)
    if found is None:
        raise PolicyError(f"the facts do not answer {workspace.question!r}")
    return Answer(answer=found)


def delegate(workspace: Workspace, questions: list[str], guess: str) -> Action:
    """Ask `questions`, or answer `guess` (marked as a guess) where asking is not possible."""
    if not workspace.can_ask or workspace.refusal is not None:
        return Answer(answer=guess, guess=True)
    if workspace.budget is not None and workspace.budget < len(questions) + 1:
        return Answer(answer=guess, guess=True)  # too few calls left for this step: it may not ask
    return Ask(questions=questions)


def combined(answer: str, subs: list[SubAnswer]) -> Answer:
    """An answer built from sub-answers: a guess if any of them was a guess."""
    return Answer(answer=answer, guess=any(sub.status == "guess" for sub in subs))


def number_of(sub: SubAnswer) -> Fraction:
    """A sub-answer read as a number; a failed or non-numeric one fails this node."""
    if sub.status == "error":
        raise PolicyError(f"subquestion {sub.question!r} failed: {sub.answer}")
    try:
        return Fraction(sub.answer.strip())
    except (ValueError, ZeroDivisionError):
        raise PolicyError(f"subquestion {sub.question!r} answered {sub.answer!r}, not a number") from None


def format_number(value: Fraction) -> str:
    """An exact integer as itself; anything else as a decimal with up to 12 significant digits."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.12g}"
