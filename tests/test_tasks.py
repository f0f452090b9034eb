"""Each task's generator and expert: 100% at (and above) a question's required depth, guessing below."""

from __future__ import annotations

import pytest

from hch.errors import QuestionError
from hch.experts import ExpertPolicy
from hch.run.engine import answer
from hch.run.facts import Facts
from hch.study.grading import grade
from hch.tasks import TASKS, get_task, oracle_answer, visible_context
from hch.tasks.base import NAMES
from hch.tasks.permutation_powering import parse as parse_permutation
from hch.tasks.sequential_assignments import parse as parse_program
from hch.tasks.shortest_path import parse as parse_graph
from hch.tasks.union_find import parse as parse_classes
from hch.tasks.wildcard_search import parse as parse_values
from hch.tasks.wildcard_search import total

pytestmark = pytest.mark.anyio
PER_TASK = 14  # two questions per required depth for most tasks


@pytest.mark.parametrize("facts", ["shown", "hidden"])
@pytest.mark.parametrize("name", list(TASKS))
async def test_expert_is_exact_at_the_required_depth_and_guesses_below(name: str, facts: Facts) -> None:
    task = TASKS[name]
    if facts == "hidden" and task.oracle is None:
        pytest.skip(f"{name} has no facts to hide")
    items = task.generate(PER_TASK, seed=7, facts=facts)
    policy = ExpertPolicy()
    low, high = task.depths_in(facts)
    assert {item.required_depth for item in items} == set(range(low, high + 1))
    below_correct = below = 0
    for item in items:
        depth = item.required_depth
        assert depth is not None
        for n in (depth, depth + 1):
            result = await answer(item.question, depth=n, policy=policy, context=item.context, facts=facts)
            assert (result.answer, result.status) == (item.answer, "ok"), (item.question, n)
        if depth > 0:
            result = await answer(item.question, depth=depth - 1, policy=policy, context=item.context, facts=facts)
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
    hidden = get_task("union-find").generate(12, seed=1, max_depth=3, facts="hidden")
    assert {item.required_depth for item in hidden} == {1, 2, 3}


@pytest.mark.parametrize(
    ("name", "extra"),
    [("permutation-powering", 0), ("sequential-assignments", 0), ("wildcard-search", 0), ("shortest-path", 1),
     ("union-find", 1)],
)
def test_hidden_facts_need_the_declared_extra_level_and_draw_the_same_questions(name: str, extra: int) -> None:
    task = TASKS[name]
    shown, hidden = task.generate(14, seed=2), task.generate(14, seed=2, facts="hidden")
    assert [i.question for i in shown] == [i.question for i in hidden]
    assert all(h.required_depth == (s.required_depth or 0) + extra for s, h in zip(shown, hidden, strict=True))
    assert task.depths_in("hidden") == (task.depths[0] + extra, task.depths[1] + extra)
    assert task.header and task.primitives and task.oracle is not None


def test_each_environment_answers_exactly_its_primitive_forms_from_the_facts() -> None:
    perm = get_task("permutation-powering").generate(1, seed=1)[0].context
    sigma = parse_permutation(perm)
    assert oracle_answer(perm, "What is sigma^1(ab)?") == sigma["ab"]
    assert oracle_answer(perm, "What is sigma^0(ab)?") == "ab"
    assert oracle_answer(perm, "What is sigma^2(ab)?") is None
    program_text = get_task("sequential-assignments").generate(1, seed=1)[0].context
    program = parse_program(program_text)
    constant, variable = next(iter(program.constants)), next(iter(program.operands))
    assert oracle_answer(program_text, f"What is the value of {constant}?") == str(program.constants[constant])
    assert oracle_answer(program_text, f"What is the value of {variable}?") is None
    assert oracle_answer(program_text, f"What is the second operand of {variable}?") == program.operands[variable][1]
    assert oracle_answer(program_text, f"What is the first operand of {constant}?") == "none (a constant)"
    assert oracle_answer(program_text, "What is f(3, 5)?") == str(program.table[3, 5])
    wild = get_task("wildcard-search").generate(1, seed=1)[0].context
    assert oracle_answer(wild, "What is the sum of the values of the strings matching abbaba?") == str(
        parse_values(wild).get("abbaba", 0))
    assert oracle_answer(wild, "What is the sum of the values of the strings matching abba*a?") is None
    graph_text = get_task("shortest-path").generate(1, seed=1)[0].context
    graph = parse_graph(graph_text)
    a = next(iter(graph))
    assert oracle_answer(graph_text, f"What are the out-neighbours of {a}?") == ", ".join(graph[a])
    assert oracle_answer(graph_text, f"Is there an edge from {a} to {graph[a][0]}?") == "yes"
    assert oracle_answer(graph_text, f"What is the length of the shortest path from {a} to {graph[a][0]}?") is None
    classes_text = get_task("union-find").generate(1, seed=1)[0].context
    classes = parse_classes(classes_text)
    root = next(iter(classes.values))
    leaf = next(x for x in classes.neighbours if x not in classes.values)
    assert oracle_answer(classes_text, f"What is the given value of {root}?") == str(classes.values[root])
    assert oracle_answer(classes_text, f"What is the given value of {leaf}?") == "none"
    assert oracle_answer(classes_text, f"What are the neighbours of {leaf}?") == ", ".join(classes.neighbours[leaf])
    assert oracle_answer(classes_text, f"What is the value of {root}?") is None
    assert oracle_answer("", "What is sigma^1(ab)?") is None  # no task's facts: no environment


def test_hidden_facts_show_only_the_header() -> None:
    for name in ("permutation-powering", "union-find"):
        context = get_task(name).generate(1, seed=1)[0].context
        assert visible_context(context) == context.splitlines()[0] == TASKS[name].header
    with pytest.raises(QuestionError, match="facts hidden needs a task's facts"):
        visible_context(get_task("arithmetic").generate(1, seed=1)[0].context)


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
