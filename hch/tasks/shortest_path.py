"""Shortest path in a random directed graph; a question needs as many levels as the path has edges."""

from __future__ import annotations

import random
import re
from functools import lru_cache

import networkx as nx

from hch.tasks.base import NAMES, Instance, Task, names_answer

HEADER = "Shortest path: a directed graph; each line lists a name's out-neighbours as \"x -> y, z\"."
EDGES_PER_VERTEX = 2
SAMPLES_PER_DEPTH = 30
NONE = "none"
OUT_QUESTION = re.compile(r"^\s*what\s+are\s+the\s+out-neighbours\s+of\s+([a-h]{2})\s*\??\s*$", re.IGNORECASE)
EDGE_QUESTION = re.compile(
    r"^\s*is\s+there\s+an\s+edge\s+from\s+([a-h]{2})\s+to\s+([a-h]{2})\s*\??\s*$", re.IGNORECASE
)
PRIMITIVES = ("What are the out-neighbours of ab? (\"cd, ef\" or \"none\")", "Is there an edge from ab to cd?")


def out_question(a: str) -> str:
    return f"What are the out-neighbours of {a}?"


def question(a: str, b: str) -> str:
    return f"What is the length of the shortest path from {a} to {b}?"


def bounded_question(a: str, b: str, steps: int) -> str:
    return f"What is the length of the shortest path from {a} to {b} using at most {steps} edge{'s' * (steps != 1)}?"


@lru_cache(maxsize=64)
def parse(context: str) -> dict[str, tuple[str, ...]]:
    """The facts of a context as a map from a name to its out-neighbours (sorted)."""
    out: dict[str, tuple[str, ...]] = {}
    for line in context.splitlines()[1:]:
        left, sep, right = line.partition("->")
        if sep:
            out[left.strip()] = tuple(sorted(n.strip() for n in right.split(",") if n.strip()))
    return out


def oracle(context: str, text: str) -> str | None:
    """The environment: a name's out-neighbours, or whether an edge exists; None for anything else."""
    if match := OUT_QUESTION.match(text):
        a = match[1].lower()
        return names_answer(parse(context).get(a, ())) if a in NAMES else None
    if match := EDGE_QUESTION.match(text):
        a, b = match[1].lower(), match[2].lower()
        return "yes" if b in parse(context).get(a, ()) else "no"
    return None


def make_instance(rng: random.Random, top: int) -> Instance:
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(NAMES)
    while graph.number_of_edges() < EDGES_PER_VERTEX * len(NAMES):
        a, b = rng.sample(NAMES, 2)
        graph.add_edge(a, b)
    lines = [f"{a} -> {', '.join(sorted(graph.succ[a]))}" for a in NAMES if graph.succ[a]]
    instance = Instance("\n".join([HEADER, *lines]))
    lengths = dict(nx.all_pairs_shortest_path_length(graph, cutoff=top))
    pairs: dict[int, list[tuple[str, str]]] = {}
    for a in NAMES:
        for b, length in lengths[a].items():
            if length >= 1:
                pairs.setdefault(length, []).append((a, b))
    for length, found in sorted(pairs.items()):
        for a, b in rng.sample(found, min(SAMPLES_PER_DEPTH, len(found))):
            instance.add(length, question(a, b), str(length))
    return instance


TASK = Task(
    name="shortest-path",
    description="length of the shortest path between two names of a random digraph; needs the path's length",
    depths=(1, 6),
    make_instance=make_instance,
    header=HEADER,
    primitives=PRIMITIVES,
    oracle=oracle,
    hidden_extra=1,  # "at most L edges" reads a's out-neighbours; with facts hidden it asks them, one level more
)
