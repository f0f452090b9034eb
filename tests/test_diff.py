from __future__ import annotations

from helpers import FunctionPolicy

import hch
from hch.review.diff import diff, match
from hch.workspace import Answer, Ask, Workspace

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def test_two_runs_of_the_same_question_agree() -> None:
    a = hch.answer_sync(SUM, depth=3).trace
    b = hch.answer_sync(SUM, depth=3).trace
    report = diff(a, b)
    assert report.same and report.first is None
    assert len(match(a, b)) == 7 and report.nodes == (7, 7)


def test_different_depths_differ_at_the_first_guess() -> None:
    a = hch.answer_sync(SUM, depth=3).trace
    b = hch.answer_sync(SUM, depth=1).trace
    report = diff(a, b)
    assert not report.same and report.first is not None
    assert report.first.what == "call 1 input"  # the root saw depth 3 in a, 1 in b
    # at depth 1 the expert asks the two halves, which guess at depth 0: root and halves are in both
    assert report.answers_differ == 3 and report.subquestions_differ == 2
    assert report.only_in_a == 4 and report.only_in_b == 0
    assert "the traces differ" in report.text()


def test_the_first_difference_is_the_earliest_call_not_the_root_answer() -> None:
    def policy(leaf_answer: str) -> FunctionPolicy:
        async def act(ws: Workspace) -> Ask | Answer:
            if ws.question == "root":
                return Ask(questions=["x", "y"]) if not ws.steps else Answer(answer="+".join(
                    s.answer for s in ws.steps[0]))
            return Answer(answer=leaf_answer if ws.question == "y" else "1")
        return FunctionPolicy(act)

    a = hch.answer_sync("root", depth=1, policy=policy("2")).trace
    b = hch.answer_sync("root", depth=1, policy=policy("3")).trace
    report = diff(a, b)
    assert report.first is not None
    assert a.graph.nodes[report.first.node_a]["question"] == "y"
    assert (report.first.what, report.first.expected["answer"], report.first.got["answer"]) == (
        "call 1 output", "2", "3")
    assert report.answers_differ == 2  # y and the root
    assert "node" in report.first.line() and "'y'" in report.first.line()


def test_costs_and_calls_are_summarised_per_trace() -> None:
    a = hch.answer_sync(SUM, depth=1).trace
    b = hch.answer_sync(SUM, depth=3).trace
    report = diff(a, b)
    assert report.policy_calls == (4, 10) and report.cost == (0.0, 0.0)
