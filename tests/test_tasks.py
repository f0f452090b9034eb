"""Each task's generator and expert: 100% at (and above) a question's required depth, guessing below."""

from __future__ import annotations

import pytest

from hch.engine import answer
from hch.experts import ExpertPolicy
from hch.grading import grade
from hch.tasks import TASKS, get_task
from hch.tasks.base import NAMES
from hch.tasks.permutation_powering import parse as parse_permutation
from hch.tasks.sequential_assignments import parse as parse_program
from hch.tasks.shortest_path import parse as parse_graph
from hch.tasks.union_find import parse as parse_classes
from hch.tasks.wildcard_search import parse as parse_values
from hch.tasks.wildcard_search import total

pytestmark = pytest.mark.anyio
PER_TASK = 14  # two questions per required depth for most tasks


@pytest.mark.parametrize("name", list(TASKS))
async def test_expert_is_exact_at_the_required_depth_and_guesses_below(name: str) -> None:
    task = TASKS[name]
    items = task.generate(PER_TASK, seed=7)
    policy = ExpertPolicy()
    assert {item.required_depth for item in items} == set(range(task.depths[0], task.depths[1] + 1))
    below_correct = below = 0
    for item in items:
        depth = item.required_depth
        assert depth is not None
        for n in (depth, depth + 1):
            result = await answer(item.question, depth=n, policy=policy, context=item.context)
            assert (result.answer, result.status) == (item.answer, "ok"), (item.question, n)
        if depth > 0:
            result = await answer(item.question, depth=depth - 1, policy=policy, context=item.context)
            assert result.status == "guess", (item.question, depth - 1)
            below += 1
            below_correct += bool(grade(result.answer, item.answer))
    assert below_correct < below  # a guess is not an answer: below the required depth accuracy falls


@pytest.mark.parametrize("name", list(TASKS))
def test_generation_is_seeded_and_questions_are_distinct(name: str) -> None:
    task = TASKS[name]
    first, again, other = task.generate(20, seed=3), task.generate(20, seed=3), task.generate(20, seed=4)
    assert first == again
    assert first != other
    assert len({item.id for item in first}) == 20
    assert len({(item.question, item.context) for item in first}) == 20
    assert all(item.answer is not None for item in first)


def test_max_depth_caps_the_required_depths() -> None:
    items = get_task("wildcard_search").generate(12, seed=1, max_depth=2)
    assert {item.required_depth for item in items} == {0, 1, 2}


def test_gold_answers_follow_the_facts_in_the_context() -> None:
    for item in get_task("permutation-powering").generate(6, seed=2):
        sigma = parse_permutation(item.context)
        assert sorted(sigma) == sorted(NAMES) and sorted(sigma.values()) == sorted(NAMES)
        k, x = item.question.removeprefix("What is sigma^").removesuffix(")?").split("(")
        y = x
        for _ in range(int(k)):
            y = sigma[y]
        assert y == item.answer
    for item in get_task("wildcard-search").generate(6, seed=2):
        pattern = item.question.split()[-1].rstrip("?")
        assert str(total(parse_values(item.context), pattern)) == item.answer
        assert item.required_depth == pattern.count("*")
    for item in get_task("sequential-assignments").generate(6, seed=2):
        program, x = parse_program(item.context), item.question.split()[-1].rstrip("?")
        assert (str(program.value(x)), program.depth(x)) == (item.answer, item.required_depth)
    for item in get_task("shortest-path").generate(6, seed=2):
        graph = parse_graph(item.context)
        assert sum(len(v) for v in graph.values()) == 2 * len(NAMES)
    for item in get_task("union-find").generate(6, seed=2):
        classes = parse_classes(item.context)
        assert item.answer in {str(v) for v in classes.values.values()}


def test_unknown_task_is_a_one_line_error() -> None:
    with pytest.raises(Exception, match="unknown task 'nope'; known tasks: arithmetic"):
        get_task("nope")
