from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from hch.study.plot import panels, plot_rows, render
from hch.study.rows import Row


def row(votes: int, depth: int, needs: int | None = None, **figures: Any) -> Row:
    base: dict[str, Any] = {name: 0 for name in Row.model_fields}
    base.update(
        votes=votes, depth=depth, required_depth=needs,
        variant="expert(early_guess)" if votes == 1 else f"vote:{votes}",
        ci_method="wilson", accuracy=0.5, ci_low=0.3, ci_high=0.7, guess_free_accuracy=0.25,
        guess_free_low=None, guess_free_high=None, calls_mean=depth + 1.0, invocations_mean=votes * (depth + 1.0),
    )
    return Row.model_validate({**base, **figures})


ROWS = [row(v, d) for v in (1, 5) for d in range(3)]
BUCKETS = [row(v, d, needs, accuracy=float(d >= needs)) for v in (1, 5) for d in range(3) for needs in (0, 2)]


def test_the_cost_panel_plots_invocations_per_question_by_variant() -> None:
    drawn = {p.key: p for p in panels(ROWS, BUCKETS)}
    cost = drawn["invocations"]
    assert [s.label for s in cost.series] == ["expert(early_guess)", "vote:5"]
    alone, voted = cost.series
    assert alone.y == [1.0, 2.0, 3.0] and voted.y == [5.0, 10.0, 15.0]  # invocations, not calls
    assert cost.log and "a vote of k is k" in cost.ylabel


def test_accuracy_and_guess_free_accuracy_are_drawn_per_variant() -> None:
    accuracy = panels(ROWS, BUCKETS)[0]
    assert [(s.label, s.dashed) for s in accuracy.series] == [
        ("expert(early_guess)", False), ("expert(early_guess), guess-free", True),
        ("vote:5", False), ("vote:5, guess-free", True),
    ]
    assert accuracy.series[0].low == [0.3] * 3 and accuracy.series[1].y == [0.25] * 3


def test_every_variant_gets_a_panel_by_required_depth() -> None:
    keys = [p.key for p in panels(ROWS, BUCKETS)]
    assert keys == ["accuracy", "invocations", "needs:expert(early_guess)", "needs:vote:5", "compounding"]
    needs = {p.key: p for p in panels(ROWS, BUCKETS)}["needs:vote:5"]
    assert [(s.label, s.y) for s in needs.series] == [("needs 0", [1.0, 1.0, 1.0]), ("needs 2", [0.0, 0.0, 1.0])]
    compounding = {p.key: p for p in panels(ROWS, BUCKETS)}["compounding"]
    assert [(s.label, s.x, s.y) for s in compounding.series] == [
        ("expert(early_guess)", [0, 2], [1.0, 1.0]), ("vote:5", [0, 2], [1.0, 1.0])]
    assert [p.key for p in panels(ROWS, [])] == ["accuracy", "invocations"]


def test_tokens_and_dollars_get_panels_only_when_something_was_spent() -> None:
    priced = [row(v, d, tokens_mean=100.0 * v, cost_mean=0.01 * v) for v in (1, 5) for d in range(2)]
    drawn = {p.key: p for p in panels(priced, [])}
    assert list(drawn) == ["accuracy", "invocations", "tokens", "cost"]
    assert drawn["tokens"].series[1].y == [500.0, 500.0] and drawn["cost"].series[0].y == [0.01, 0.01]


def test_the_figure_draws_exactly_the_panels_data() -> None:
    drawn = panels(ROWS, BUCKETS)
    figure = render(drawn, "title")
    axes = [a for a in figure.axes if a.get_visible()]
    assert len(axes) == len(drawn)
    cost = axes[[p.key for p in drawn].index("invocations")]
    lines = {line.get_label(): list(line.get_ydata()) for line in cost.get_lines()}
    assert lines == {"expert(early_guess)": [1.0, 2.0, 3.0], "vote:5": [5.0, 10.0, 15.0]}
    assert cost.get_yscale() == "log"
    import matplotlib.pyplot as plt

    plt.close(figure)


def test_a_sweep_without_gold_is_drawn_for_cost_only(tmp_path: Path) -> None:
    ungraded = [row(1, d, accuracy=None, ci_low=None, ci_high=None, guess_free_accuracy=None) for d in range(2)]
    accuracy = panels(ungraded, [])[0]
    assert accuracy.series == [] and accuracy.note.startswith("no gold answers")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an empty legend
        paths = plot_rows(ungraded, [], tmp_path / "plot", "t")
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
    assert paths["svg"].read_text().count("<svg") == 1


@pytest.mark.parametrize("variants", [1, 3])
def test_panels_fit_a_grid(variants: int, tmp_path: Path) -> None:
    rows = [row(v, d) for v in range(1, variants + 1) for d in range(2)]
    buckets = [row(v, d, 1) for v in range(1, variants + 1) for d in range(2)]
    figure = render(panels(rows, buckets), "t")
    assert sum(a.get_visible() for a in figure.axes) == 2 + variants + 1
    import matplotlib.pyplot as plt

    plt.close(figure)
