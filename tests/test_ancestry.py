"""The ancestors' questions as a persistent map: memory linear in a chain's length (issue 14, class 1)."""

from __future__ import annotations

import tracemalloc

import hch
from hch.limits import Limits
from hch.policies.callable import CallablePolicy
from hch.run.ancestry import Ancestry
from hch.workspace import Answer, Ask, Workspace


def test_adding_a_question_leaves_the_parents_map_alone() -> None:
    root = Ancestry()
    a = root.with_node("a", 0)
    b = a.with_node("b", 1)
    sibling = a.with_node("c", 2)
    again = b.with_node("a", 3)  # the nearest ancestor with a question wins
    assert (root.get("a"), a.get("a"), a.get("b"), b.get("b"), sibling.get("b"), sibling.get("c")) == (
        None, 0, None, 1, None, 2)
    assert (again.get("a"), b.get("a"), len(root), len(a), len(b), len(again)) == (3, 0, 0, 1, 2, 2)


def _chain(workspace: Workspace) -> Answer | Ask:
    n = int(workspace.question[1:])
    if n == 0:
        return Answer(answer="0")
    if not workspace.steps:
        return Ask(questions=[f"q{n - 1}"])
    return Answer(answer=str(int(workspace.steps[0][0].answer) + 1))


def _peak(length: int) -> int:
    policy = CallablePolicy(_chain, fingerprint="chain")
    tracemalloc.start()
    try:
        result = hch.answer_sync(f"q{length}", depth=length, policy=policy, limits=Limits(max_nodes=length + 1))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert result.answer == str(length)


def test_a_chain_runs_in_memory_linear_in_its_length() -> None:
    """Copying the ancestors' map per node made a chain quadratic (16,000 nodes: 3.7 GB)."""
    short, long = _peak(300), _peak(1200)
    assert long < 4 * short * 1.5  # linear: 4x the nodes, about 4x the memory (quadratic would be ~16x)
