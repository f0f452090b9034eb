"""The shortest-path expert: iterative deepening at the root over exact bounded searches below it."""

from __future__ import annotations

import random
import re

from hch.errors import PolicyError
from hch.experts.base import combined, rng_for
from hch.tasks.base import header
from hch.tasks.shortest_path import HEADER, bounded_question, parse
from hch.workspace import Action, Answer, Ask, SubAnswer, Workspace

NONE = "none"
PATH = r"what\s+is\s+the\s+length\s+of\s+the\s+shortest\s+path\s+from\s+([a-h]{2})\s+to\s+([a-h]{2})"
QUESTION = re.compile(rf"^\s*{PATH}\s*\??\s*$", re.IGNORECASE)
BOUNDED = re.compile(rf"^\s*{PATH}\s+using\s+at\s+most\s+(\d+)\s+edges?\s*\??\s*$", re.IGNORECASE)


def length_of(sub: SubAnswer) -> int | None:
    """A sub-answer read as a path length, None for "none"."""
    if sub.status == "error":
        raise PolicyError(f"subquestion {sub.question!r} failed: {sub.answer}")
    text = sub.answer.strip().lower()
    if text == NONE:
        return None
    if not text.isdigit():
        raise PolicyError(f"subquestion {sub.question!r} answered {sub.answer!r}, not a length or 'none'")
    return int(text)


class ShortestPathExpert:
    """"shortest path from a to b" asks "... using at most L edges" for L = 1, 2, ... one step at a
    time until a path is found, so it needs as many levels as the path has edges. At depth n its
    subquestions (depth n - 1) can settle "at most L edges" only for L <= n, so once "at most n
    edges" answers "none" it knows the path is longer than it can afford and guesses at once
    (asking on would only expand subtrees that end in guesses). "at most L edges" is exact: a == b
    is 0, an edge is 1, otherwise 1 + the minimum over the out-neighbours' answers for L - 1 (the
    neighbours are read from the facts, a primitive look-up)."""

    name = "shortest-path"
    version = 3
    forms: tuple[str, ...] = ("What is the length of the shortest path from ab to cd? (with a shortest-path context)",)

    def knows(self, question: str, context: str) -> bool:
        return header(context) == HEADER and (QUESTION.match(question) or BOUNDED.match(question)) is not None

    def act(self, workspace: Workspace) -> Action:
        if match := BOUNDED.match(workspace.question):
            return self.bounded(workspace, match[1].lower(), match[2].lower(), int(match[3]))
        match = QUESTION.match(workspace.question)
        if match is None:
            raise PolicyError(f"not a shortest-path question: {workspace.question!r}")
        a, b = match[1].lower(), match[2].lower()
        if a == b:
            return Answer(answer="0")
        subs = workspace.answers
        if subs and (subs[-1].status == "guess" or length_of(subs[-1]) is not None):
            return combined(subs[-1].answer.strip().lower(), subs)
        if not workspace.can_ask or workspace.refusal or len(subs) >= workspace.depth:
            rng = rng_for(self.name, workspace.question, workspace.context)
            return Answer(answer=str(rng.randint(1, 6)), guess=True)
        return Ask(questions=[bounded_question(a, b, len(subs) + 1)])

    def bounded(self, workspace: Workspace, a: str, b: str, steps: int) -> Action:
        out = parse(workspace.context)
        if a == b:
            return Answer(answer="0")
        if b in out.get(a, ()):
            return Answer(answer="1")
        if steps <= 1 or not out.get(a):
            return Answer(answer=NONE)
        neighbours, subs = out[a], workspace.answers
        if len(subs) < len(neighbours):
            if not workspace.can_ask or workspace.refusal:
                rng = rng_for(self.name, workspace.question, workspace.context)
                return Answer(answer=rng.choice([NONE, *map(str, range(2, steps + 1))]), guess=True)
            rest = [bounded_question(c, b, steps - 1) for c in neighbours[len(subs) :]]
            return Ask(questions=rest[: workspace.max_asks])
        found = [n for n in map(length_of, subs) if n is not None]
        return combined(str(1 + min(found)) if found else NONE, subs)

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong look-up: 1 or none, swapped."""
        return NONE if answer.strip() != NONE else "1"
