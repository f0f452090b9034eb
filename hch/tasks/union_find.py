"""Union find ("equalities"): a name's value is its class root's; needs the distance to the root."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx

from hch.tasks.base import NAMES, Instance, Task, names_answer

HEADER = (
    "Union find: names joined by a line \"x = y\" are equal; each class of equal names has one root, "
    "given by a line \"x has value v\"."
)
CLASS_SIZES = (8, 16)
RECENT = 2  # a new name joins one of the last few, so the trees are deep
VALUES = 10
NONE = "none"
GIVEN_QUESTION = re.compile(r"^\s*what\s+is\s+the\s+given\s+value\s+of\s+([a-h]{2})\s*\??\s*$", re.IGNORECASE)
NEIGHBOURS_QUESTION = re.compile(r"^\s*what\s+are\s+the\s+neighbours\s+of\s+([a-h]{2})\s*\??\s*$", re.IGNORECASE)
PRIMITIVES = ("What is the given value of ab? (a root's value, else \"none\")",
              "What are the neighbours of ab? (\"cd, ef\" or \"none\")")


@dataclass(frozen=True)
class Classes:
    """The facts of an instance."""

    neighbours: dict[str, tuple[str, ...]]
    values: dict[str, int]


def question(x: str) -> str:
    return f"What is the value of {x}?"


def away_question(x: str, came_from: str) -> str:
    return f"What is the value of {x}, looking away from {came_from}?"


def given_question(x: str) -> str:
    return f"What is the given value of {x}?"


def neighbours_question(x: str) -> str:
    return f"What are the neighbours of {x}?"


@lru_cache(maxsize=64)
def parse(context: str) -> Classes:
    neighbours: dict[str, list[str]] = {}
    values: dict[str, int] = {}
    for line in context.splitlines()[1:]:
        if " has value " in line:
            name, _, value = line.partition(" has value ")
            values[name.strip()] = int(value)
        elif " = " in line:
            a, _, b = (part.strip() for part in line.partition(" = "))
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
    return Classes({k: tuple(sorted(v)) for k, v in neighbours.items()}, values)


def oracle(context: str, text: str) -> str | None:
    """The environment: a name's given value ("none" unless it is a root) and its neighbours
    ("none" if it has none); None for any other question."""
    classes = parse(context)
    if match := GIVEN_QUESTION.match(text):
        x = match[1].lower()
        return None if x not in NAMES else str(classes.values[x]) if x in classes.values else NONE
    if match := NEIGHBOURS_QUESTION.match(text):
        x = match[1].lower()
        return None if x not in NAMES else names_answer(classes.neighbours.get(x, ()))
    return None


def make_instance(rng: random.Random, top: int) -> Instance:
    names = NAMES[:]
    rng.shuffle(names)
    forest: nx.Graph[str] = nx.Graph()
    lines, roots = [HEADER], []
    while names:
        size = min(rng.randint(*CLASS_SIZES), len(names))
        members, names = names[:size], names[size:]
        forest.add_nodes_from(members)
        for i in range(1, size):
            parent = rng.choice(members[max(0, i - RECENT) : i])
            forest.add_edge(parent, members[i])
            lines.append(f"{members[i]} = {parent}" if rng.random() < 0.5 else f"{parent} = {members[i]}")
        roots.append(members[0])
    values = {root: rng.randrange(VALUES) for root in roots}
    rng.shuffle(lines_ := lines[1:])
    lines = [HEADER, *lines_, *(f"{root} has value {value}" for root, value in values.items())]
    instance = Instance("\n".join(lines))
    for root in roots:
        for x, distance in nx.single_source_shortest_path_length(forest, root, cutoff=top).items():
            instance.add(distance, question(x), str(values[root]))
    return instance


TASK = Task(
    name="union-find",
    description="the value of a name, held by its class's root; needs the distance from the name to the root",
    depths=(0, 6),
    make_instance=make_instance,
    header=HEADER,
    primitives=PRIMITIVES,
    oracle=oracle,
    hidden_extra=1,  # a node reads whether x is a root and its neighbours; with facts hidden it asks, one level more
)
