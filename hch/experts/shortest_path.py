"""The shortest-path expert: iterative deepening at the root over exact bounded searches below it."""

from __future__ import annotations

import random
import re

from hch.errors import PolicyError
from hch.experts.base import combined, facts_in_view, look_up, rng_for
from hch.tasks.base import header, names_of
from hch.tasks.shortest_path import (
    EDGE_QUESTION,
    HEADER,
    NONE,
    OUT_QUESTION,
    bounded_question,
    oracle,
    out_question,
    parse,
)
from hch.workspace import Action, Answer, Ask, SubAnswer, Workspace

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
    time, wherever it may ask, until a path is found (or an answer comes back a guess, which it
    passes up). "at most L edges" is exact: a == b is 0, an edge is 1, otherwise 1 + the minimum over
    the out-neighbours' answers for L - 1. It reads a's out-neighbours from the facts when it is
    shown them and otherwise asks the environment first ("What are the out-neighbours of a?"),
    which takes a level: a path of length L needs L levels with facts shown, L + 1 hidden. (The
    `early_guess` variant guesses at once once the rounds its depth can settle found nothing.)"""

    name = "shortest-path"
    version = 4
    forms: tuple[str, ...] = (
        "What is the length of the shortest path from ab to cd[ using at most 3 edges]? / What are the "
        "out-neighbours of ab? / Is there an edge from ab to cd? (with a shortest-path context)",
    )

    def knows(self, question: str, context: str) -> bool:
        forms = (QUESTION, BOUNDED, OUT_QUESTION, EDGE_QUESTION)
        return header(context) == HEADER and any(form.match(question) for form in forms)

    def act(self, workspace: Workspace) -> Action:
        if OUT_QUESTION.match(workspace.question) or EDGE_QUESTION.match(workspace.question):
            return look_up(workspace, oracle)
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
        if not workspace.can_ask or workspace.refusal:
            return self.guess(workspace)
        return Ask(questions=[bounded_question(a, b, len(subs) + 1)])

    def bounded(self, workspace: Workspace, a: str, b: str, steps: int) -> Action:
        if a == b:
            return Answer(answer="0")
        subs = workspace.answers
        if facts_in_view(workspace.context):
            out = parse(workspace.context).get(a, ())
        elif not subs:
            return Ask(questions=[out_question(a)]) if workspace.can_ask and not workspace.refusal else self.guess(
                workspace
            )
        else:
            if subs[0].status == "error":
                raise PolicyError(f"subquestion {subs[0].question!r} failed: {subs[0].answer}")
            out, subs = names_of(subs[0].answer), subs[1:]
        if b in out:
            return Answer(answer="1")
        if steps <= 1 or not out:
            return Answer(answer=NONE)
        if len(subs) < len(out):
            if not workspace.can_ask or workspace.refusal:
                return self.guess(workspace)
            rest = [bounded_question(c, b, steps - 1) for c in out[len(subs) :]]
            return Ask(questions=rest[: workspace.max_asks])
        found = [n for n in map(length_of, subs) if n is not None]
        return combined(str(1 + min(found)) if found else NONE, subs)

    def guess(self, workspace: Workspace) -> Answer:
        rng = rng_for(self.name, workspace.question, workspace.context)
        if match := BOUNDED.match(workspace.question):
            return Answer(answer=rng.choice([NONE, *map(str, range(2, int(match[3]) + 1))]), guess=True)
        return Answer(answer=str(rng.randint(1, 6)), guess=True)

    def short(self, workspace: Workspace) -> bool:
        """At the root: at depth n the rounds L <= n (facts shown; n - 1 hidden) settle exactly; once
        they found nothing the path is longer than this node can afford."""
        if not QUESTION.match(workspace.question):
            return False
        affordable = workspace.depth - (0 if facts_in_view(workspace.context) else 1)
        return len(workspace.answers) >= affordable

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong look-up: 1 or none, swapped."""
        return NONE if answer.strip() != NONE else "1"
