"""The permutation-powering expert: sigma^k(x) as two sigma^(k//2) look-ups, one after the other."""

from __future__ import annotations

import random
import re

from hch.errors import PolicyError
from hch.experts.base import combined, rng_for
from hch.tasks.base import NAMES, header
from hch.tasks.permutation_powering import HEADER, parse, question, required_depth
from hch.workspace import Action, Answer, Ask, SubAnswer, Workspace

QUESTION = re.compile(r"^\s*what\s+is\s+sigma\^(\d+)\(\s*([a-h]{2})\s*\)\s*\??\s*$", re.IGNORECASE)


def parse_question(text: str) -> tuple[int, str] | None:
    match = QUESTION.match(text)
    return (int(match[1]), match[2].lower()) if match else None


def name_of(sub: SubAnswer) -> str:
    """A sub-answer read as a name; a failed or foreign one fails this node."""
    if sub.status == "error":
        raise PolicyError(f"subquestion {sub.question!r} failed: {sub.answer}")
    name = sub.answer.strip().lower()
    if name not in NAMES:
        raise PolicyError(f"subquestion {sub.question!r} answered {sub.answer!r}, not a name")
    return name


class PermutationExpert:
    """Looks up sigma^1 and sigma^0; halves k otherwise. Guesses at once when its depth is short of
    floor(log2 k), so an HCH_n below a question's required depth costs one call."""

    name = "permutation-powering"
    version = 1
    forms: tuple[str, ...] = ("What is sigma^13(ab)? (with a permutation-powering context)",)

    def knows(self, question: str, context: str) -> bool:
        return header(context) == HEADER and parse_question(question) is not None

    def act(self, workspace: Workspace) -> Action:
        parsed = parse_question(workspace.question)
        if parsed is None:
            raise PolicyError(f"not a permutation-powering question: {workspace.question!r}")
        k, x = parsed
        sigma = parse(workspace.context)
        if k <= 1:
            if x not in sigma:
                raise PolicyError(f"{x} is not one of the instance's names")
            return Answer(answer=sigma[x] if k == 1 else x)
        subs = workspace.answers
        if workspace.depth < required_depth(k) or not workspace.can_ask or workspace.refusal:
            return Answer(answer=rng_for(self.name, workspace.question, workspace.context).choice(NAMES), guess=True)
        if not subs:
            return Ask(questions=[question(k // 2, x)])
        if len(subs) == 1:
            return Ask(questions=[question(k // 2, name_of(subs[0]))])
        if len(subs) == 2 and k % 2:
            return Ask(questions=[question(1, name_of(subs[1]))])
        return combined(name_of(subs[-1]), subs)

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong answer: another name."""
        return rng.choice([n for n in NAMES if n != answer.strip()])
