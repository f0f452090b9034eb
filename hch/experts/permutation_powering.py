"""The permutation-powering expert: sigma^k(x) as two sigma^(k//2) look-ups, one after the other."""

from __future__ import annotations

import random

from hch.errors import PolicyError
from hch.experts.base import combined, facts_in_view, rng_for
from hch.tasks.base import NAMES, header
from hch.tasks.permutation_powering import HEADER, parse, parse_question, question, required_depth
from hch.workspace import Action, Answer, Ask, SubAnswer, Workspace


def name_of(sub: SubAnswer) -> str:
    """A sub-answer read as a name; a failed or foreign one fails this node."""
    if sub.status == "error":
        raise PolicyError(f"subquestion {sub.question!r} failed: {sub.answer}")
    name = sub.answer.strip().lower()
    if name not in NAMES:
        raise PolicyError(f"subquestion {sub.question!r} answered {sub.answer!r}, not a name")
    return name


class PermutationExpert:
    """Looks up sigma^1 and sigma^0 (with facts hidden the environment answers those); otherwise asks
    y = sigma^(k//2)(x), then sigma^(k//2)(y), then sigma(z) if k is odd, wherever it may ask. A
    sub-answer that came back a guess leaves nothing exact to ask about: it passes it up, marked.
    (The `early_guess` variant guesses at once when its depth is short of floor(log2 k).)"""

    name = "permutation-powering"
    version = 2
    forms: tuple[str, ...] = ("What is sigma^13(ab)? (with a permutation-powering context)",)

    def knows(self, question: str, context: str) -> bool:
        return header(context) == HEADER and parse_question(question) is not None

    def act(self, workspace: Workspace) -> Action:
        k, x = self._parsed(workspace)
        if k <= 1:
            return self.look_up(workspace, k, x)
        subs = workspace.answers
        if subs and subs[-1].status == "guess":
            return Answer(answer=name_of(subs[-1]), guess=True)
        if len(subs) == 2 + k % 2:
            return combined(name_of(subs[-1]), subs)
        if not workspace.can_ask or workspace.refusal:
            return self.guess(workspace)
        if not subs:
            return Ask(questions=[question(k // 2, x)])
        if len(subs) == 1:
            return Ask(questions=[question(k // 2, name_of(subs[0]))])
        return Ask(questions=[question(1, name_of(subs[1]))])

    def look_up(self, workspace: Workspace, k: int, x: str) -> Action:
        if k == 0:
            return Answer(answer=x)
        if not facts_in_view(workspace.context):
            raise PolicyError(f"sigma({x}) is a look-up in the facts, which this node is not shown")
        sigma = parse(workspace.context)
        if x not in sigma:
            raise PolicyError(f"{x} is not one of the instance's names")
        return Answer(answer=sigma[x])

    def guess(self, workspace: Workspace) -> Answer:
        return Answer(answer=rng_for(self.name, workspace.question, workspace.context).choice(NAMES), guess=True)

    def short(self, workspace: Workspace) -> bool:
        return workspace.depth < required_depth(self._parsed(workspace)[0])

    @staticmethod
    def _parsed(workspace: Workspace) -> tuple[int, str]:
        parsed = parse_question(workspace.question)
        if parsed is None:
            raise PolicyError(f"not a permutation-powering question: {workspace.question!r}")
        return parsed

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong answer: another name."""
        return rng.choice([n for n in NAMES if n != answer.strip()])
