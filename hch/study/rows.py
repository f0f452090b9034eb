"""A sweep's figures per voting variant and depth (and required depth): `Row`s, and their CSV.

Every interval is a 95% interval over instances (see `hch.study.stats.interval`). "Guess-free" accuracy
counts a run as right only if it is right and no guess stands behind its answer
(`RunRecord.guess_on_path`: a workspace with status guess at the root or reachable from it).
Costs count what was really done: `invocations` are base-policy invocations, so a vote of k
copies counts k per call, next to `calls` (policy calls, a vote counting once).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from hch.files import write_atomic
from hch.study.stats import interval, mean, median
from hch.study.sweep import RunRecord


def variant_label(policy: str, votes: int) -> str:
    """How a variant is named in tables and legends: the policy's spec, or `vote:K` (`vote(K, SPEC)`
    when the spec is a vote itself, so that a vote of votes is not mistaken for a plain one)."""
    if votes == 1:
        return policy or "policy"
    return f"vote({votes}, {policy})" if policy.strip().startswith("vote") else f"vote:{votes}"


class Row(BaseModel):
    """Aggregate figures of one voting variant at one depth (and one required-depth bucket)."""

    votes: int
    depth: int
    required_depth: int | None
    """None for the row over all questions."""
    questions: int
    graded: int
    """Questions with a gold answer."""
    correct: int
    accuracy: float | None
    """correct / graded; None when nothing could be graded."""
    ci_low: float | None
    """Lower end of the 95% interval of the accuracy, over instances (method in `ci_method`)."""
    ci_high: float | None
    guesses: int
    """Runs whose root answer was a guess."""
    errors: int
    nodes_mean: float
    nodes_median: float
    calls_mean: float
    """Mean policy calls per run as a standalone run would make them (a vote counts once)."""
    calls_median: float
    calls_made: int
    """Policy calls the sweep actually made for these runs."""
    cache_hits: int
    """Call-cache hits plus subtree reuses in these runs."""
    tokens_mean: float
    cost_mean: float
    cost_spent: float
    wall_mean: float
    wall_median: float
    variant: str
    """The variant's name: the policy spec for one copy, `vote:K` for K."""
    instances: int
    """Distinct instances among the graded questions (a question without one is its own)."""
    ci_method: str
    """How the intervals were taken: wilson, bootstrap (over instances) or wilson-instances."""
    guess_free: int
    """Graded runs that are correct with no guess behind the answer."""
    guess_free_accuracy: float | None
    """guess_free / graded: accuracy counting an answer that rests on a guess as wrong."""
    guess_free_low: float | None
    """Lower end of the 95% interval of the guess-free accuracy, over instances."""
    guess_free_high: float | None
    guessed_on_path: int
    """Runs with a guess anywhere behind the answer (root or any workspace reachable from it)."""
    invocations_mean: float
    """Mean base-policy invocations per run as a standalone run would make them (a vote of k: k per call)."""
    invocations_median: float
    invocations_made: int
    """Base-policy invocations the sweep actually made for these runs."""
    tokens_spent: int
    """Tokens the sweep actually spent on these runs."""
    budget: int | None = None
    """Budgeted HCH: the runs' call budget (a sweep over budget has a row per budget); None: not budgeted."""
    spent_mean: float | None = None
    """Budgeted HCH: mean calls charged to a run's budget (reused subtrees charged to every copy; see
    `RunRecord.spent`); None: not budgeted."""

    @property
    def point(self) -> int:
        """Where the row sits on the sweep's axis: its budget in a sweep over budget, else its depth."""
        return self.budget if self.budget else self.depth


def aggregate(records: list[RunRecord], by_bucket: bool = False, policy: str = "") -> list[Row]:
    """Rows per (votes, depth), or per (votes, depth, required depth); `policy` (the spec) names variants."""
    groups: dict[tuple[int, int, int | None, int | None], list[RunRecord]] = {}
    for record in records:
        bucket = record.required_depth if by_bucket else None
        if by_bucket and bucket is None:
            continue
        groups.setdefault((record.votes, record.depth, bucket, record.budget), []).append(record)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][3] or 0, kv[0][1], kv[0][2] or 0))
    return [row(votes, depth, bucket, group, variant_label(policy, votes), budget)
            for (votes, depth, bucket, budget), group in ordered]


def row(votes: int, depth: int, bucket: int | None, group: list[RunRecord], variant: str,
        budget: int | None = None) -> Row:
    graded = [r for r in group if r.correct is not None]
    correct = sum(bool(r.correct) for r in graded)
    free = sum(bool(r.correct) and not r.guess_on_path for r in graded)
    accuracy, low, high, method = proportion(graded, lambda r: bool(r.correct))
    free_accuracy, free_low, free_high, _ = proportion(graded, lambda r: bool(r.correct) and not r.guess_on_path)

    def stat(get: Callable[[RunRecord], float]) -> tuple[float, float]:
        values = [get(r) for r in group]
        return mean(values), median(values)

    (nodes_mean, nodes_median), (calls_mean, calls_median) = stat(lambda r: r.nodes), stat(lambda r: r.calls)
    (invocations_mean, invocations_median), (wall_mean, wall_median) = (
        stat(lambda r: r.invocations), stat(lambda r: r.wall_time))
    return Row(
        votes=votes, depth=depth, required_depth=bucket, questions=len(group), graded=len(graded),
        correct=correct, accuracy=accuracy, ci_low=low, ci_high=high,
        guesses=sum(r.status == "guess" for r in group), errors=sum(r.status == "error" for r in group),
        nodes_mean=nodes_mean, nodes_median=nodes_median, calls_mean=calls_mean, calls_median=calls_median,
        calls_made=sum(r.calls_made for r in group), cache_hits=sum(r.call_cache_hits + r.subtree_hits for r in group),
        tokens_mean=mean([r.tokens for r in group]), cost_mean=mean([r.cost for r in group]),
        cost_spent=sum(r.cost_spent for r in group), wall_mean=wall_mean, wall_median=wall_median,
        variant=variant, instances=len({instance_of(r) for r in graded}), ci_method=method,
        guess_free=free, guess_free_accuracy=free_accuracy, guess_free_low=free_low, guess_free_high=free_high,
        guessed_on_path=sum(r.guess_on_path for r in group),
        invocations_mean=invocations_mean, invocations_median=invocations_median,
        invocations_made=sum(r.invocations_made for r in group), tokens_spent=sum(r.tokens_spent for r in group),
        budget=budget, spent_mean=mean([r.spent for r in group if r.spent is not None]) if budget else None,
    )


def instance_of(record: RunRecord) -> str:
    """The instance a run's question came from; a question without one is its own instance."""
    return f"instance:{record.instance}" if record.instance is not None else f"question:{record.id}"


def proportion(graded: list[RunRecord], success: Callable[[RunRecord], bool]
               ) -> tuple[float | None, float | None, float | None, str]:
    """The share of `graded` runs that succeed, its 95% interval over instances, and the method."""
    if not graded:
        return None, None, None, ""
    low, high, method = interval([(instance_of(r), success(r)) for r in graded])
    return sum(map(success, graded)) / len(graded), low, high, method


def write_csv(rows: list[Row], path: Path) -> None:
    """One line per row, the columns in `Row`'s order; None is an empty cell."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(Row.model_fields))
    writer.writeheader()
    for one in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in one.model_dump().items()})
    write_atomic(path, text.getvalue())
