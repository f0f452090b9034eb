"""The noisy expert: each primitive answer wrong with probability p, for reliability studies.

A primitive answer is one given without sub-answers (a look-up). Whether it is corrupted is
drawn from a generator seeded by (seed, question, context): deterministic, so the call and
subtree caches stay consistent, and blind to the node's depth, so the same H makes the same
slip on the same look-up wherever it sits in the tree (copies made by `replica` slip
independently of each other).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction

from hch.experts import ExpertPolicy
from hch.experts.base import Expert, format_number, rng_for
from hch.workspace import Action, Answer, Reply, Workspace


class NoisyExpertPolicy:
    """An `ExpertPolicy` whose primitive answers are wrong with probability `noise`."""

    depth_stable = True
    """Acts the same at any depth that lets it finish (see `hch.sweep_cache`)."""

    def __init__(
        self, experts: Sequence[Expert] | None = None, noise: float = 0.0, seed: str = "0", early_guess: bool = False
    ) -> None:
        if not 0 <= noise <= 1:
            raise ValueError(f"noise must be between 0 and 1, not {noise}")
        self.base = ExpertPolicy(experts, early_guess=early_guess)
        self.experts = self.base.experts
        self.noise, self.seed = noise, seed

    @property
    def fingerprint(self) -> str:
        return f"{self.base.fingerprint}+noise({self.noise:g},seed={self.seed})"

    def check(self, question: str, context: str) -> None:
        self.base.check(question, context)

    def replica(self, index: int) -> NoisyExpertPolicy:
        """An independent copy: same experts and noise, its own stream of slips."""
        return NoisyExpertPolicy(self.experts, self.noise, f"{self.seed}.{index}", self.base.early_guess)

    async def act(self, workspace: Workspace) -> Action | Reply:
        expert, action = self.base.decide(workspace)
        if not isinstance(action, Answer) or action.guess or workspace.steps or self.noise == 0:
            return action
        rng = rng_for("noise", self.seed, workspace.question, workspace.context)
        if rng.random() >= self.noise:
            return action
        wrong = getattr(expert, "wrong", None)
        slip = wrong(workspace, action.answer, rng) if callable(wrong) else generic_wrong(action.answer, rng)
        return Reply(action=Answer(answer=slip), raw={"noise": {"slipped": True, "correct": action.answer}})


def generic_wrong(answer: str, rng: random.Random) -> str:
    """A wrong answer for experts that do not say what a plausible one is: a number moved by 1 or 2."""
    try:
        value = Fraction(answer.strip())
    except (ValueError, ZeroDivisionError):
        return answer + " (misread)"
    return format_number(value + rng.choice((-2, -1, 1, 2)))
