"""What a task suite is, and the generation loop the tasks share."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from hch.run.facts import Facts
from hch.study.question_set import Item

LETTERS = "abcdefgh"
NAMES = [a + b for a in LETTERS for b in LETTERS]
"""The 64 two-letter names of the paper's tasks."""
NO_NAMES = "none"
"""How the environment says a list of names is empty."""
PER_INSTANCE = 10
"""Questions drawn from one instance before a new one is generated (they share its context)."""


@dataclass
class Instance:
    """One database of facts and the questions it offers, by the depth they need."""

    context: str
    """The facts as text: the run's shared context, readable by every node (and by an LLM)."""
    questions: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    """Required depth -> (question, gold answer) pairs."""

    def add(self, depth: int, question: str, answer: str) -> None:
        self.questions.setdefault(depth, []).append((question, answer))


@dataclass(frozen=True)
class Task:
    """A built-in suite: a seeded generator of instances with gold answers."""

    name: str
    """Selectable as `hch sweep --task NAME`."""
    description: str
    """One line for listings."""
    depths: tuple[int, int]
    """The smallest and largest required depth the generator offers."""
    make_instance: Callable[[random.Random, int], Instance]
    """Builds one instance from a generator and the largest depth wanted."""
    header: str = ""
    """The first line of an instance's context: names the task and stays visible when facts are hidden."""
    primitives: tuple[str, ...] = ()
    """The primitive question forms the task's environment answers from the facts (examples)."""
    oracle: Callable[[str, str], str | None] | None = None
    """The environment: (context, question) -> the answer read from the facts, or None when the
    question is not one of the primitive forms. Used only when facts are hidden from H."""
    hidden_extra: int = 0
    """Levels a question needs beyond `depths`' (shown-facts) count when facts are hidden: 1 where the
    shown-facts expert reads a fact at an inner node, which H must instead ask of the environment."""

    def required_depth(self, shown: int, facts: Facts = "shown") -> int:
        """The depth a question needing `shown` levels with the facts in view needs in mode `facts`."""
        return shown + (self.hidden_extra if facts == "hidden" else 0)

    def depths_in(self, facts: Facts = "shown") -> tuple[int, int]:
        """The smallest and largest required depth the generator offers in mode `facts`."""
        return self.required_depth(self.depths[0], facts), self.required_depth(self.depths[1], facts)

    def generate(self, count: int, seed: int, max_depth: int | None = None, facts: Facts = "shown") -> list[Item]:
        """`count` distinct questions, required depths spread evenly over the task's range.

        `Item.required_depth` is the depth in mode `facts`, and `max_depth` caps it; without a cap
        both modes draw the same questions."""
        extra = self.required_depth(0, facts)
        top = self.depths[1] if max_depth is None else min(max_depth - extra, self.depths[1])
        if top < self.depths[0]:
            raise ValueError(f"task {self.name} has no question needing depth {max_depth} or less (facts {facts})")
        rng = random.Random(f"{self.name}:{seed}")
        wanted = list(range(self.depths[0], top + 1))
        items: list[Item] = []
        instance, used, drawn, misses = self.make_instance(rng, top), set[str](), 0, 0
        number = 0
        while len(items) < count:
            if drawn == PER_INSTANCE:
                instance, used, drawn = self.make_instance(rng, top), set(), 0
                number += 1
            depth = wanted[len(items) % len(wanted)]
            pair = _draw(rng, instance, depth, used)
            drawn += 1
            if pair is None:
                misses += 1
                if misses > 100:
                    raise ValueError(f"task {self.name}: no instance offers questions needing depth {depth}")
                drawn = PER_INSTANCE  # this instance has run out of such questions: take a fresh one
                continue
            misses = 0
            question, answer = pair
            used.add(question)
            items.append(Item(
                id=f"{self.name}-{seed}-{len(items):04d}", question=question, answer=answer,
                context=instance.context, instance=f"{self.name}-{seed}-i{number:03d}", required_depth=depth + extra,
            ))
        return items


def _draw(rng: random.Random, instance: Instance, depth: int, used: set[str]) -> tuple[str, str] | None:
    fresh = [pair for pair in instance.questions.get(depth, []) if pair[0] not in used]
    return rng.choice(fresh) if fresh else None


def header(context: str) -> str:
    """The first line of a context: it names the task, so an expert knows its facts are there."""
    return context.split("\n", 1)[0]


def names_answer(names: tuple[str, ...]) -> str:
    """A list of names as the environment gives it: "cd, ef", or "none"."""
    return ", ".join(names) if names else NO_NAMES


def names_of(text: str) -> tuple[str, ...]:
    """The names in an answer given by `names_answer`."""
    text = text.strip().lower()
    return () if text == NO_NAMES else tuple(n.strip() for n in text.split(",") if n.strip())
