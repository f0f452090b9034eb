from __future__ import annotations

from pathlib import Path

import pytest

from hch.study.question_set import Item, QuestionSetError, dump, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_items_with_defaults_and_numeric_gold(tmp_path: Path) -> None:
    path = write(tmp_path, '{"question": "What is 2 + 3?", "answer": 5}\n\n'
                           '{"id": "b", "question": "q?", "context": "facts", "grader": "contains"}\n')
    first, second = load(path)
    assert first == Item(id="line-1", question="What is 2 + 3?", answer="5")
    assert (second.id, second.answer, second.context, second.grader) == ("b", None, "facts", "contains")


def test_default_grader_applies_only_where_a_line_names_none(tmp_path: Path) -> None:
    path = write(tmp_path, '{"question": "a", "answer": "1"}\n{"question": "b", "answer": "x", "grader": "exact"}\n')
    assert [item.grader for item in load(path, grader="numeric")] == ["numeric", "exact"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"question": "ok"}\nnot json\n', "line 2: not valid JSON"),
        ('[1, 2]\n', "line 1: expected a JSON object, got list"),
        ('{"answer": "1"}\n', "line 1: question: Field required"),
        ('{"question": "   "}\n', "line 1: question: the question is blank"),
        ('{"question": "a", "grader": "fuzzy"}\n', "line 1: grader: Input should be"),
        ('{"question": "a", "answer": "(", "grader": "regex"}\n', "line 1: answer is not a valid regular expression"),
        ('{"question": "a", "bogus": 1}\n', "line 1: bogus: Extra inputs are not permitted"),
        ('{"id": "x", "question": "a"}\n{"id": "x", "question": "b"}\n', "line 2: id 'x' already used on line 1"),
        ('\n\n', "holds no questions"),
    ],
)
def test_a_malformed_line_is_one_error_naming_its_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(QuestionSetError) as info:
        load(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(QuestionSetError, match="no question file at"):
        load(tmp_path / "nowhere.jsonl")


def test_dump_round_trips(tmp_path: Path) -> None:
    items = [Item(id="a", question="q", answer="1", required_depth=2, grader="numeric", tolerance=0.5)]
    dump(items, tmp_path / "out.jsonl")
    assert load(tmp_path / "out.jsonl") == items
