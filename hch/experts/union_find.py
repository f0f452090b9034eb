"""The union-find expert: look for the root one step further each round, every direction at once."""

from __future__ import annotations

import random
import re

from hch.errors import PolicyError
from hch.experts.base import facts_in_view, look_up, rng_for
from hch.tasks.base import header, names_of
from hch.tasks.union_find import (
    GIVEN_QUESTION,
    HEADER,
    NEIGHBOURS_QUESTION,
    NONE,
    VALUES,
    away_question,
    given_question,
    neighbours_question,
    oracle,
    parse,
)
from hch.workspace import Action, Answer, Ask, SubAnswer, Workspace

UNKNOWN = "unknown"
NOWHERE = "nowhere"  # no root in that direction at any distance
VALUE = r"what\s+is\s+the\s+value\s+of\s+([a-h]{2})"
QUESTION = re.compile(rf"^\s*{VALUE}\s*\??\s*$", re.IGNORECASE)
AWAY = re.compile(rf"^\s*{VALUE},?\s+looking\s+away\s+from\s+([a-h]{{2}})\s*\??\s*$", re.IGNORECASE)
WITHIN = re.compile(
    rf"^\s*{VALUE},?\s+looking\s+away\s+from\s+([a-h]{{2}}),?\s+within\s+(\d+)\s+steps?\s*\??\s*$", re.IGNORECASE
)


def within_question(x: str, came_from: str, steps: int) -> str:
    return f"What is the value of {x}, looking away from {came_from}, within {steps} step{'s' * (steps != 1)}?"


Facts = tuple[int | None, tuple[str, ...]]
"""What a node knows of its name: its given value (None unless a root) and its neighbours."""


def settled(subs: list[SubAnswer]) -> Answer:
    """The one definite value among `subs`; else a claimed guess; else unknown (a guess if any sub was)."""
    for sub in subs:
        if sub.status == "error":
            raise PolicyError(f"subquestion {sub.question!r} failed: {sub.answer}")
    claimed = [sub for sub in subs if sub.answer.strip().lower() not in (UNKNOWN, NOWHERE)]
    known = [sub.answer.strip() for sub in claimed if sub.status == "ok"]
    if known:
        return Answer(answer=known[0])
    guessed = [sub.answer.strip() for sub in claimed if sub.status == "guess"]
    if guessed:
        return Answer(answer=guessed[0], guess=True)
    closed = all(sub.answer.strip().lower() == NOWHERE for sub in subs)
    return Answer(answer=NOWHERE if closed else UNKNOWN, guess=any(sub.status == "guess" for sub in subs))


class UnionFindExpert:
    """"value of x" is x's own value if x is a root; otherwise it searches outwards one step more
    each round, wherever it may ask: round L asks every neighbour n "value of n, looking away from x,
    within L - 1 steps", which is exact (the root's value; "nowhere" if that whole side has no root;
    else "unknown") and needs L - 1 levels; the next round asks only the directions still
    "unknown"; a round that comes back a guess is passed up as one. So it needs as many levels as x
    is steps from its root, and every subtree it expands ends without a guess. A node reads its
    name's given value and neighbours from the facts when it is shown them; otherwise it first asks
    the environment ("What is the given value of x?", "What are the neighbours of x?"), which takes
    a level: distance d needs d levels with facts shown, d + 1 hidden. The unbounded "looking away
    from" form (no step limit) is answered too: one definite value settles it even if other
    directions were cut short by the depth. (The `early_guess` variant guesses at once once the
    rounds its depth can settle found nothing.)"""

    name = "union-find"
    version = 3
    forms: tuple[str, ...] = (
        "What is the value of ab? / What is the value of ab, looking away from cd[, within 3 steps]? / "
        "What is the given value of ab? / What are the neighbours of ab? (with a union-find context)",
    )

    def knows(self, question: str, context: str) -> bool:
        forms = (QUESTION, AWAY, WITHIN, GIVEN_QUESTION, NEIGHBOURS_QUESTION)
        return header(context) == HEADER and any(form.match(question) for form in forms)

    def act(self, workspace: Workspace) -> Action:
        steps: int | None = None
        if GIVEN_QUESTION.match(workspace.question) or NEIGHBOURS_QUESTION.match(workspace.question):
            return look_up(workspace, oracle)
        if match := WITHIN.match(workspace.question):
            x, came_from, steps = match[1].lower(), match[2].lower(), int(match[3])
        elif match := AWAY.match(workspace.question):
            x, came_from = match[1].lower(), match[2].lower()
        elif match := QUESTION.match(workspace.question):
            return self.root(workspace, match[1].lower())
        else:
            raise PolicyError(f"not a union-find question: {workspace.question!r}")
        known = self.facts(workspace, x)
        if known is None:
            return self.ask_facts(workspace, x)
        value, neighbours = known
        if value is not None:
            return Answer(answer=str(value))
        others = [n for n in neighbours if n != came_from]
        if not others:
            return Answer(answer=UNKNOWN if steps is None else NOWHERE)
        if steps == 0:
            return Answer(answer=UNKNOWN)
        subs = self.later(workspace)
        if len(subs) < len(others):
            if not workspace.can_ask or workspace.refusal:
                return self.guess(workspace)
            rest = others[len(subs) :]
            asked = [away_question(n, x) if steps is None else within_question(n, x, steps - 1) for n in rest]
            return Ask(questions=asked[: workspace.max_asks])
        return settled(subs)

    @staticmethod
    def facts(workspace: Workspace, x: str) -> Facts | None:
        """x's given value and neighbours: read from the facts when shown, else from the first step's
        answers (None before it is asked)."""
        if facts_in_view(workspace.context):
            classes = parse(workspace.context)
            if x not in classes.values and x not in classes.neighbours:
                raise PolicyError(f"{x} is not one of the instance's names")
            return classes.values.get(x), classes.neighbours.get(x, ())
        if not workspace.steps:
            return None
        given, neighbours = workspace.steps[0]
        for sub in (given, neighbours):
            if sub.status == "error":
                raise PolicyError(f"subquestion {sub.question!r} failed: {sub.answer}")
        text = given.answer.strip().lower()
        if text != NONE and not text.isdigit():
            raise PolicyError(f"subquestion {given.question!r} answered {given.answer!r}, not a value or none")
        return (None if text == NONE else int(text)), names_of(neighbours.answer)

    @staticmethod
    def later(workspace: Workspace) -> list[SubAnswer]:
        """The sub-answers of the search (after the look-up step when facts are hidden)."""
        if facts_in_view(workspace.context):
            return workspace.answers
        return [sub for step in workspace.steps[1:] for sub in step]

    def ask_facts(self, workspace: Workspace, x: str) -> Action:
        if not workspace.can_ask or workspace.refusal:
            return self.guess(workspace)
        return Ask(questions=[given_question(x), neighbours_question(x)])

    def root(self, workspace: Workspace, x: str) -> Action:
        known = self.facts(workspace, x)
        if known is None:
            return self.ask_facts(workspace, x)
        if known[0] is not None:
            return Answer(answer=str(known[0]))
        found, open_, rounds, part = self.rounds(workspace, list(known[1]))
        if found is not None:
            return found
        if not open_:
            return Answer(answer=NOWHERE)
        if not workspace.can_ask or workspace.refusal:
            return self.guess(workspace)
        asked = [within_question(n, x, rounds) for n in open_[part:]]
        return Ask(questions=asked[: workspace.max_asks])

    def rounds(self, workspace: Workspace, open_: list[str]) -> tuple[Answer | None, list[str], int, int]:
        """The search so far: (a settled or guessed answer, the directions still open, the rounds
        finished, the questions of the current round already answered)."""
        # each round asks again only the directions the last one left open ("unknown", not "nowhere")
        subs, seen, rounds = self.later(workspace), 0, 0
        while open_ and len(subs) - seen >= len(open_):
            last, seen, rounds = subs[seen : seen + len(open_)], seen + len(open_), rounds + 1
            found = settled(last)
            if found.guess or found.answer not in (NOWHERE, UNKNOWN):
                return found, open_, rounds, 0
            open_ = [n for n, sub in zip(open_, last, strict=True) if sub.answer.strip().lower() == UNKNOWN]
        return None, open_, rounds, len(subs) - seen

    def guess(self, workspace: Workspace) -> Answer:
        rng = rng_for(self.name, workspace.question, workspace.context)
        return Answer(answer=rng.choice([UNKNOWN, *map(str, range(VALUES))]), guess=True)

    def short(self, workspace: Workspace) -> bool:
        """At the root: round L + 1 needs L levels below it (L + 1 with facts hidden); at depth n, once
        the rounds it can afford found nothing, the root is further than it can reach."""
        match = QUESTION.match(workspace.question)
        known = self.facts(workspace, match[1].lower()) if match else None
        if known is None:
            return False
        _, _, rounds, part = self.rounds(workspace, list(known[1]))
        affordable = workspace.depth - (0 if facts_in_view(workspace.context) else 1)
        return rounds >= affordable and not part

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong look-up: another value (a leaf claims one instead of "unknown")."""
        return rng.choice([v for v in [UNKNOWN, *map(str, range(VALUES))] if v != answer.strip()])
