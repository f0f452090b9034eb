"""The noisy expert: an expert that slips with probability p, for reliability studies.

The expert first works out its own honest action; a slip corrupts that action, never anything
the expert did not compute itself (no gold answer, no task generator). What may slip (`on`):

- `lookups` (default): a primitive answer, one given without sub-answers (a look-up);
- `all`: also a combination (an answer built from sub-answers is replaced by a wrong one) and
  an ask (one subquestion is asked wrongly: one of its numbers moved by 1, or, with no number,
  one of its names swapped for another name the workspace shows). Guesses never slip.

What a wrong answer is (`wrong`):

- `uniform` (default): uniform over the other answers the question's form can have (each
  expert's `wrong`; a number without such a list moves by 1 or 2);
- `plausible`: one of a plausible few, two wrong answers fixed per question (all copies that
  slip there choose between the same two);
- `popular`: one popular wrong answer per question, the same for every copy that slips there.

Whether a call slips is drawn from a generator seeded by (seed, copy, question, context, and for
asks and combinations the sub-answers): deterministic, so the call and subtree caches stay
consistent, and blind to the node's depth. `Workspace.copy` is "" when copies are merged, so the
same H makes the same slip on the same look-up wherever it sits in the tree; with independent
copies each copy draws its own. Copies made by `replica(i)` (a vote's) have seeds of their own.
A check's retry (`hch.policies.check`: "your answer was not confirmed") is the work done again,
its slip drawn anew. `correlation` R: with probability R a copy's draw is the shared draw of all copies (seeded
without the replica index and without the copy id), else its own; R = 1 makes every copy slip
alike, R = 0 (default) makes them independent.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, Literal, TypeVar, get_args

from hch.experts import ExpertPolicy
from hch.experts.base import Expert, format_number, rng_for
from hch.policies.check import is_recheck, redo
from hch.tasks.base import NAMES
from hch.workspace import Action, Answer, Ask, Reply, Workspace

On = Literal["lookups", "all"]
Wrong = Literal["uniform", "plausible", "popular"]
ON: tuple[str, ...] = get_args(On)
WRONG: tuple[str, ...] = get_args(Wrong)
PLAUSIBLE_FEW = 2
"""How many wrong answers `wrong=plausible` spreads its slips over, per question."""
T = TypeVar("T")
_TOKEN = re.compile(r"(?<![\w^])-?\d+(?![\w.])|\^\d+|(?<!\w)[a-h]{2}(?!\w)")


class NoisyExpertPolicy:
    """An `ExpertPolicy` whose actions slip with probability `noise` (see the module docstring)."""

    depth_stable = True
    """Acts the same at any depth that lets it finish (see `hch.study.sweep_cache`)."""

    def __init__(
        self, experts: Sequence[Expert] | None = None, noise: float = 0.0, seed: str = "0",
        on: On = "lookups", wrong: Wrong = "uniform", correlation: float = 0.0, shared_seed: str | None = None,
        early_guess: bool = False,
    ) -> None:
        if not 0 <= noise <= 1:
            raise ValueError(f"noise must be between 0 and 1, not {noise}")
        if not 0 <= correlation <= 1:
            raise ValueError(f"correlation must be between 0 and 1, not {correlation}")
        if on not in ON or wrong not in WRONG:
            raise ValueError(f"on must be one of {ON} and wrong one of {WRONG}, not {on!r} and {wrong!r}")
        self.base = ExpertPolicy(experts, early_guess=early_guess)
        self.experts = self.base.experts
        self.noise, self.seed, self.on, self.wrong, self.correlation = noise, seed, on, wrong, correlation
        self.shared_seed = seed if shared_seed is None else shared_seed
        """The seed of the draws all copies share (a replica's own `seed` adds its index)."""

    @property
    def fingerprint(self) -> str:
        settings = (("on", self.on, "lookups"), ("wrong", self.wrong, "uniform"),
                    ("correlation", f"{self.correlation:g}", "0"))
        extra = "".join(f",{name}={value}" for name, value, default in settings if value != default)
        return f"{self.base.fingerprint}+noise({self.noise:g},seed={self.seed}{extra})"

    def check(self, question: str, context: str) -> None:
        self.base.check(question, context)

    def replica(self, index: int) -> NoisyExpertPolicy:
        """An independent copy: same experts and noise, its own stream of slips (shared ones aside)."""
        return NoisyExpertPolicy(
            self.experts, self.noise, f"{self.seed}.{index}", self.on, self.wrong, self.correlation, self.shared_seed,
            self.base.early_guess,
        )

    async def act(self, workspace: Workspace) -> Action | Reply:
        if workspace.pointers:  # pointer mode: it reads and routes as the expert does, and slips where it decides
            from hch.experts import pointers

            return pointers.act(redo(workspace), self._slipped)
        return self._slipped(workspace)

    def _slipped(self, workspace: Workspace) -> Action | Reply:
        expert, action = self.base.decide(redo(workspace))  # a check's retry: the work done again, slips drawn anew
        kind = slip_kind(action, workspace)
        if kind is None or self.noise == 0 or (kind != "lookup" and self.on == "lookups"):
            return action
        shared = self._shares(workspace, kind)
        stream = self._stream(workspace, kind, shared)
        if stream.random() >= self.noise:
            return action
        fixed = rng_for("wrong", self.shared_seed, workspace.question, workspace.context, _steps(workspace, kind),
                        action.model_dump_json())
        if isinstance(action, Answer):
            slip: Action = Answer(answer=self._pick(lambda rng: wrong_answer(expert, workspace, action.answer, rng),
                                                    stream, fixed))
            correct: Any = action.answer
        else:
            assert isinstance(action, Ask)  # slip_kind: an expansion does not slip
            questions = self._pick(lambda rng: wrong_questions(action.questions, workspace, rng), stream, fixed)
            if questions == action.questions:
                return action  # nothing in the subquestions could be asked wrongly
            slip, correct = Ask(questions=questions), action.questions
        record: dict[str, Any] = {"slipped": True, "correct": correct}
        if self.on != "lookups" or self.correlation:
            record.update(kind=kind, shared=shared)
        return Reply(action=slip, raw={"noise": record})

    def _shares(self, workspace: Workspace, kind: str) -> bool:
        """Whether this copy's draw is the one all copies share (probability `correlation`)."""
        if self.correlation >= 1 or self.correlation <= 0:
            return self.correlation >= 1
        steps = _steps(workspace, kind)
        rng = rng_for("share", self.seed, workspace.copy, workspace.question, workspace.context, steps)
        return rng.random() < self.correlation

    def _stream(self, workspace: Workspace, kind: str, shared: bool) -> random.Random:
        """The generator this call's slip is drawn from: the copy's own, or the one all copies share."""
        seed, copy = (self.shared_seed, "") if shared else (self.seed, workspace.copy)
        parts = [seed, *([copy] if copy else []), workspace.question, workspace.context]
        if kind != "lookup":
            parts.append(_steps(workspace, kind))
        if is_recheck(workspace.refusal):
            parts.append(str(workspace.refusal))
        return rng_for("noise", *parts)

    def _pick(self, draw: Callable[[random.Random], T], stream: random.Random, fixed: random.Random) -> T:
        """A wrong output under `self.wrong`: drawn fresh, or from the few fixed for the question."""
        if self.wrong == "uniform":
            return draw(stream)
        few: list[T] = []
        for _ in range(8 * PLAUSIBLE_FEW):
            candidate = draw(fixed)
            if candidate not in few:
                few.append(candidate)
            if len(few) == PLAUSIBLE_FEW:
                break
        return few[0] if self.wrong == "popular" else stream.choice(few)


def slip_kind(action: Action, workspace: Workspace) -> str | None:
    """`lookup`, `combination` or `ask`: what kind of action could slip here (None for a guess)."""
    if isinstance(action, Ask):
        return "ask"
    if not isinstance(action, Answer) or action.guess:  # an expansion reads: it cannot slip
        return None
    return "combination" if workspace.steps else "lookup"


def _steps(workspace: Workspace, kind: str) -> str:
    """The sub-answers an ask or a combination was made from, as text for a seed."""
    if kind == "lookup":
        return ""
    return json.dumps([[(s.question, s.answer, s.status) for s in step] for step in workspace.steps])


def wrong_answer(expert: Expert, workspace: Workspace, answer: str, rng: random.Random) -> str:
    """A wrong answer of the question's form: the expert's `wrong`, or a number moved by 1 or 2."""
    wrong = getattr(expert, "wrong", None)
    return str(wrong(workspace, answer, rng)) if callable(wrong) else generic_wrong(answer, rng)


def generic_wrong(answer: str, rng: random.Random) -> str:
    """A wrong answer for experts that do not say what a plausible one is: a number moved by 1 or 2."""
    try:
        value = Fraction(answer.strip())
    except (ValueError, ZeroDivisionError):
        return answer + " (misread)"
    return format_number(value + rng.choice((-2, -1, 1, 2)))


def wrong_questions(questions: list[str], workspace: Workspace, rng: random.Random) -> list[str]:
    """The step with one subquestion asked wrongly: a number in it moved by 1 (not below 0), or,
    where it has none, a name in it swapped for another name the workspace shows (unchanged if neither)."""
    index = rng.randrange(len(questions))
    question = questions[index]
    tokens = list(_TOKEN.finditer(question))
    numbers = [t for t in tokens if not t[0].isalpha()]
    chosen = rng.choice(numbers or tokens) if tokens else None
    if chosen is None:
        return questions
    text = chosen[0]
    if text.isalpha():
        shown = " ".join([workspace.question, workspace.context, *[s.answer for s in workspace.answers]])
        seen = set(_TOKEN.findall(shown))
        names = sorted(n for n in seen if n.isalpha() and n != text) or [n for n in NAMES if n != text]
        new = rng.choice(names)
    else:
        prefix, value = ("^", int(text[1:])) if text.startswith("^") else ("", int(text))
        new = prefix + str(value + 1 if value <= 0 or rng.random() < 0.5 else value - 1)
    wrong = question[: chosen.start()] + new + question[chosen.end():]
    return [*questions[:index], wrong, *questions[index + 1:]]
