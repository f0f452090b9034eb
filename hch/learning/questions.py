"""The question sets of an IDA study: training questions (labelled by Amp) and evaluation questions.

Two regimes, because a memorizer cannot answer a question it never saw:

- **universe** (for the table): a small fixed set of instances (`instances`), whose questions are
  all of the training set (or a large sample of it), and a fixed evaluation sample from the same
  instances and distribution. For permutation powering the universe is every sigma^k(x) with
  k < 64 on each instance, so every subquestion H asks of X is itself a training question; other
  tasks' universes are the questions their generator offers on each instance.
- **held-out** (for the neural learner): training questions from the task generator, evaluation
  questions from instances never trained on.

Gold answers and required depths are kept for evaluation and reports only; the loop never shows
them to H or X.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from hch.learning.example import key
from hch.study.question_set import Item
from hch.tasks import permutation_powering
from hch.tasks.base import NAMES, Task

HELD_OUT_SEED = 1_000_003
"""Added to the study's seed for the evaluation instances of the held-out regime."""
PERMUTATION_K = 64
"""Universe of permutation powering: sigma^k(x) for k below this (required depth 0 to 5)."""


def hidden_depth(task: Task, shown: int) -> int:
    """The depth a question needs with the facts hidden from H."""
    return task.required_depth(shown, "hidden")


def universe(task: Task, instances: int, seed: int, max_depth: int | None = None) -> list[Item]:
    """Every question of `instances` fixed instances needing at most `max_depth` (facts hidden),
    with gold answers and required depths."""
    items: list[Item] = []
    for number in range(instances):
        instance_id = f"{task.name}-u{seed}-i{number:03d}"
        made = task.make_instance(random.Random(f"ida:{task.name}:{seed}:{number}"), task.depths[1])
        if task.name == permutation_powering.TASK.name:
            sigma = permutation_powering.parse(made.context)
            pairs = [
                (permutation_powering.required_depth(k), permutation_powering.question(k, x),
                 permutation_powering.power(sigma, x, k))
                for k in range(PERMUTATION_K) for x in NAMES
            ]  # the shown-facts depth floor(log2 k) is also the hidden one: sigma^0 and sigma^1 are look-ups
        else:
            pairs = [(depth, q, a) for depth, offered in sorted(made.questions.items()) for q, a in offered]
        seen: set[str] = set()
        for depth, question, gold in pairs:
            if question in seen or (max_depth is not None and hidden_depth(task, depth) > max_depth):
                continue
            seen.add(question)
            items.append(Item(
                id=f"{instance_id}-q{len(seen) - 1:04d}", question=question, answer=gold, context=made.context,
                instance=instance_id, required_depth=hidden_depth(task, depth),
            ))
    return items


def spread_sample(items: list[Item], count: int, seed: int) -> list[Item]:
    """`count` items drawn without replacement, the required depths spread evenly (as the generator
    does); all of them when `count` is 0 or not smaller."""
    if count <= 0 or count >= len(items):
        return list(items)
    rng = random.Random(seed)
    by_depth: dict[int, list[Item]] = {}
    for item in items:
        by_depth.setdefault(item.required_depth or 0, []).append(item)
    for pool in by_depth.values():
        rng.shuffle(pool)
    picked: list[Item] = []
    while len(picked) < count:
        for depth in sorted(by_depth):
            if by_depth[depth] and len(picked) < count:
                picked.append(by_depth[depth].pop())
    return sorted(picked, key=lambda item: item.id)


def held_out(
    task: Task, train: int, evaluate: int, seed: int, max_depth: int | None = None
) -> tuple[list[Item], list[Item]]:
    """Training questions from the generator at `seed`, evaluation questions on other instances."""
    return (
        task.generate(train, seed, max_depth=max_depth, facts="hidden"),
        task.generate(evaluate, seed + HELD_OUT_SEED, max_depth=max_depth, facts="hidden"),
    )


def overlap(evaluation: Iterable[Item], training: Iterable[Item]) -> int:
    """How many evaluation questions (question and facts) are also training questions."""
    trained = {key(item.question, item.context) for item in training}
    return sum(key(item.question, item.context) in trained for item in evaluation)
