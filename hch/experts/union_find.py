"""The union-find expert: ask every neighbour (looking away from here) until the root answers."""

from __future__ import annotations

import random
import re

from hch.errors import PolicyError
from hch.experts.base import rng_for
from hch.tasks.base import header
from hch.tasks.union_find import HEADER, VALUES, away_question, parse
from hch.workspace import Action, Answer, Ask, Workspace

UNKNOWN = "unknown"
VALUE = r"what\s+is\s+the\s+value\s+of\s+([a-h]{2})"
QUESTION = re.compile(rf"^\s*{VALUE}\s*\??\s*$", re.IGNORECASE)
AWAY = re.compile(rf"^\s*{VALUE},?\s+looking\s+away\s+from\s+([a-h]{{2}})\s*\??\s*$", re.IGNORECASE)


class UnionFindExpert:
    """"value of x" is x's own value if x is a root; otherwise it asks each neighbour n "value of n,
    looking away from x". The root lies in exactly one direction, so one definite (non-guess)
    value settles the answer even if other directions were cut short by the depth."""

    name = "union-find"
    version = 1
    forms: tuple[str, ...] = (
        "What is the value of ab? / What is the value of ab, looking away from cd? (with a union-find context)",
    )

    def knows(self, question: str, context: str) -> bool:
        return header(context) == HEADER and (QUESTION.match(question) or AWAY.match(question)) is not None

    def act(self, workspace: Workspace) -> Action:
        classes = parse(workspace.context)
        if match := AWAY.match(workspace.question):
            x, came_from = match[1].lower(), match[2].lower()
        elif match := QUESTION.match(workspace.question):
            x, came_from = match[1].lower(), None
        else:
            raise PolicyError(f"not a union-find question: {workspace.question!r}")
        if x in classes.values:
            return Answer(answer=str(classes.values[x]))
        if x not in classes.neighbours:
            raise PolicyError(f"{x} is not one of the instance's names")
        others = [n for n in classes.neighbours[x] if n != came_from]
        if not others:
            return Answer(answer=UNKNOWN)
        subs = workspace.answers
        if len(subs) < len(others):
            if not workspace.can_ask or workspace.refusal:
                rng = rng_for(self.name, workspace.question, workspace.context)
                return Answer(answer=rng.choice([UNKNOWN, *map(str, range(VALUES))]), guess=True)
            return Ask(questions=[away_question(n, x) for n in others[len(subs) :]][: workspace.max_asks])
        for sub in subs:
            if sub.status == "error":
                raise PolicyError(f"subquestion {sub.question!r} failed: {sub.answer}")
        claimed = [sub for sub in subs if sub.answer.strip().lower() != UNKNOWN]
        known = [sub.answer.strip() for sub in claimed if sub.status == "ok"]
        if known:
            return Answer(answer=known[0])
        guessed = [sub.answer.strip() for sub in claimed if sub.status == "guess"]
        if guessed:
            return Answer(answer=guessed[0], guess=True)
        return Answer(answer=UNKNOWN, guess=any(sub.status == "guess" for sub in subs))

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong look-up: another value (a leaf claims one instead of "unknown")."""
        return rng.choice([v for v in [UNKNOWN, *map(str, range(VALUES))] if v != answer.strip()])
