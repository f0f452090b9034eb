"""The wildcard-search expert: split on the first wildcard, ask both halves at once, add."""

from __future__ import annotations

import random
import re

from hch.errors import PolicyError
from hch.experts.base import combined, number_of, rng_for
from hch.tasks.base import header
from hch.tasks.wildcard_search import HEADER, LENGTH, parse, question
from hch.workspace import Action, Answer, Ask, Workspace

QUESTION = re.compile(
    rf"^\s*what\s+is\s+the\s+sum\s+of\s+the\s+values\s+of\s+the\s+strings\s+matching\s+([ab*]{{{LENGTH}}})\s*\??\s*$",
    re.IGNORECASE,
)


def parse_question(text: str) -> str | None:
    match = QUESTION.match(text)
    return match[1].lower() if match else None


class WildcardExpert:
    """Looks up a pattern without wildcards; otherwise needs one level per wildcard, and guesses at
    once when its depth is short of that."""

    name = "wildcard-search"
    version = 1
    forms: tuple[str, ...] = (
        "What is the sum of the values of the strings matching a*b**a? (with a wildcard-search context)",
    )

    def knows(self, question: str, context: str) -> bool:
        return header(context) == HEADER and parse_question(question) is not None

    def act(self, workspace: Workspace) -> Action:
        pattern = parse_question(workspace.question)
        if pattern is None:
            raise PolicyError(f"not a wildcard-search question: {workspace.question!r}")
        wildcards = pattern.count("*")
        if wildcards == 0:
            return Answer(answer=str(parse(workspace.context).get(pattern, 0)))
        if workspace.depth < wildcards or not workspace.can_ask or workspace.refusal:
            span = 2**wildcards // 2
            guess = rng_for(self.name, workspace.question, workspace.context).randint(-span, span)
            return Answer(answer=str(guess), guess=True)
        subs = workspace.answers
        if not subs:
            return Ask(questions=[question(pattern.replace("*", c, 1)) for c in "ab"])
        return combined(str(sum(number_of(sub) for sub in subs)), subs)

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong look-up: another of -1, 0, +1."""
        return rng.choice([v for v in ("-1", "0", "1") if v != answer.strip()])
