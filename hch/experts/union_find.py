"""The union-find expert: look for the root one step further each round, every direction at once."""

from __future__ import annotations

import random
import re

from hch.errors import PolicyError
from hch.experts.base import rng_for
from hch.tasks.base import header
from hch.tasks.union_find import HEADER, VALUES, away_question, parse
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
    each round: round L asks every neighbour n "value of n, looking away from x, within L - 1
    steps", which is exact (the root's value; "nowhere" if that whole side has no root; else
    "unknown") and needs L - 1 levels; the next round asks only the directions still "unknown".
    So it needs as many levels as x is steps from its root, every subtree it expands ends without
    a guess, and at depth n, once round n finds nothing, it knows the root is further than it can
    afford and guesses at once. The unbounded "looking away from" form (no step limit) is answered
    too: one definite value settles it even if other directions were cut short by the depth."""

    name = "union-find"
    version = 2
    forms: tuple[str, ...] = (
        "What is the value of ab? / What is the value of ab, looking away from cd[, within 3 steps]? "
        "(with a union-find context)",
    )

    def knows(self, question: str, context: str) -> bool:
        forms = (QUESTION, AWAY, WITHIN)
        return header(context) == HEADER and any(form.match(question) for form in forms)

    def act(self, workspace: Workspace) -> Action:
        classes = parse(workspace.context)
        steps: int | None = None
        if match := WITHIN.match(workspace.question):
            x, came_from, steps = match[1].lower(), match[2].lower(), int(match[3])
        elif match := AWAY.match(workspace.question):
            x, came_from = match[1].lower(), match[2].lower()
        elif match := QUESTION.match(workspace.question):
            return self.root(workspace, match[1].lower())
        else:
            raise PolicyError(f"not a union-find question: {workspace.question!r}")
        if x in classes.values:
            return Answer(answer=str(classes.values[x]))
        if x not in classes.neighbours:
            raise PolicyError(f"{x} is not one of the instance's names")
        others = [n for n in classes.neighbours[x] if n != came_from]
        if not others:
            return Answer(answer=UNKNOWN if steps is None else NOWHERE)
        if steps == 0:
            return Answer(answer=UNKNOWN)
        subs = workspace.answers
        if len(subs) < len(others):
            if not workspace.can_ask or workspace.refusal:
                return self.guess(workspace)
            rest = others[len(subs) :]
            asked = [away_question(n, x) if steps is None else within_question(n, x, steps - 1) for n in rest]
            return Ask(questions=asked[: workspace.max_asks])
        return settled(subs)

    def root(self, workspace: Workspace, x: str) -> Action:
        classes = parse(workspace.context)
        if x in classes.values:
            return Answer(answer=str(classes.values[x]))
        if x not in classes.neighbours:
            raise PolicyError(f"{x} is not one of the instance's names")
        # each round asks again only the directions the last one left open ("unknown", not "nowhere")
        open_, subs, seen, rounds = list(classes.neighbours[x]), workspace.answers, 0, 0
        while open_ and len(subs) - seen >= len(open_):
            last, seen, rounds = subs[seen : seen + len(open_)], seen + len(open_), rounds + 1
            found = settled(last)
            if found.guess or found.answer not in (NOWHERE, UNKNOWN):
                return found
            open_ = [n for n, sub in zip(open_, last, strict=True) if sub.answer.strip().lower() == UNKNOWN]
        if not open_:
            return Answer(answer=NOWHERE)
        part = len(subs) - seen
        # round L + 1 needs L levels below this node: at depth n, rounds 1..n are all it can afford
        if not workspace.can_ask or workspace.refusal or (rounds >= workspace.depth and not part):
            return self.guess(workspace)
        asked = [within_question(n, x, rounds) for n in open_[part:]]
        return Ask(questions=asked[: workspace.max_asks])

    def guess(self, workspace: Workspace) -> Answer:
        rng = rng_for(self.name, workspace.question, workspace.context)
        return Answer(answer=rng.choice([UNKNOWN, *map(str, range(VALUES))]), guess=True)

    def wrong(self, workspace: Workspace, answer: str, rng: random.Random) -> str:
        """A plausible wrong look-up: another value (a leaf claims one instead of "unknown")."""
        return rng.choice([v for v in [UNKNOWN, *map(str, range(VALUES))] if v != answer.strip()])
