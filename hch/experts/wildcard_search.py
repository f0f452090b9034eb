"""The wildcard-search expert: split on the first wildcard, ask both halves at once, add."""

from __future__ import annotations

import random

from hch.errors import PolicyError
from hch.experts.base import combined, delegate, facts_in_view, number_of, rng_for
from hch.tasks.base import header
from hch.tasks.wildcard_search import HEADER, parse, parse_question, question
from hch.workspace import Action, Answer, Workspace


class WildcardExpert:
    """Looks up a pattern without wildcards (with facts hidden the environment answers those);
    otherwise asks the two patterns with the first wildcard replaced by a and by b, wherever it may
    ask, and adds (a guess if either was). (The `early_guess` variant guesses at once when its depth
    is short of the number of wildcards.)"""

    name = "wildcard-search"
    version = 2
    forms: tuple[str, ...] = (
        "What is the sum of the values of the strings matching a*b**a? (with a wildcard-search context)",
    )

    def knows(self, question: str, context: str) -> bool:
        return header(context) == HEADER and parse_question(question) is not None

    def act(self, workspace: Workspace) -> Action:
        pattern = self._pattern(workspace)
        if "*" not in pattern:
            if not facts_in_view(workspace.context):
                raise PolicyError(f"the value of {pattern} is a look-up in the facts, which this node is not shown")
            return Answer(answer=str(parse(workspace.context).get(pattern, 0)))
        subs = workspace.answers
        if subs:
            return combined(str(sum(number_of(sub) for sub in subs)), subs)
        halves = [question(pattern.replace("*", c, 1)) for c in "ab"]
        return delegate(workspace, halves, self.guess(workspace).answer)

    def guess(self, workspace: Workspace) -> Answer:
        span = 2 ** self._pattern(workspace).count("*") // 2
        return Answer(answer=str(rng_for(self.name, workspace.question, workspace.context).randint(-span, span)),
                      guess=True)

    def short(self, workspace: Workspace) -> bool:
        return workspace.depth < self._pattern(workspace).count("*")

    @staticmethod
    def _pattern(workspace: Workspace) -> str:
        pattern = parse_question(workspace.question)
        if pattern is None:
            raise PolicyError(f"not a wildcard-search question: {workspace.question!r}")
        return pattern

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong look-up: another of -1, 0, +1."""
        return rng.choice([v for v in ("-1", "0", "1") if v != answer.strip()])
