"""Run: python examples/budget_sweep_study.py   (offline, about a minute; rewrites examples/budget-sweep/)

Budgeted HCH (after Christiano's ALBA) with the offline honest expert: how do answer quality and cost
change with the budget of policy calls a run may make? Every task (arithmetic and the five tasks of
Christiano, Shlegeris and Amodei 2018), 30 questions each (3 instances, seed 1), budgets 1 to 3000 with
depth unbounded, facts hidden behind the task's environment as in the paper (arithmetic has none).

Facts hidden, because then every policy call is H's own work (a decomposition or a combination): the
environment answers look-ups for free, so the budget buys thinking, not reading, and the required depths
are the paper's. The honest expert decides from what it sees and its budget: it asks its step wherever
the budget pays for one call per subquestion and one to answer, leaves the shares to the default (an even
split of all it has but that one call), and guesses only where it may not ask.

Tables and the figure go to examples/budget-sweep/; the sweeps themselves (every trace, runs.jsonl)
to studies/example-budget-*/ (not committed), each started afresh. The same sweep from the command
line: `hch sweep --task NAME -n 30 --seed 1 --facts hidden --budgets 1,3,10,30,100,300,1000,3000`.
"""

from __future__ import annotations

import itertools
import shutil
import sys
from pathlib import Path

import anyio

from hch.policies.spec import make_policy
from hch.study.plot import BUDGET, Panel, Series, render, save
from hch.study.question_set import Item
from hch.study.rows import Row, aggregate
from hch.study.sweep import Outcome, RunRecord, SweepConfig, run_sweep
from hch.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "budget-sweep"
RUNS = ROOT / "studies"
QUESTIONS, SEED, TOP = 30, 1, 6
BUDGETS = [1, 3, 10, 30, 100, 300, 1000, 3000]
POLICY = "expert"


def facts_of(name: str) -> str:
    """Hidden where the task has an environment to answer from the facts (arithmetic has no facts)."""
    return "hidden" if getattr(TASKS[name], "oracle", None) is not None else "shown"


def require() -> None:
    """Stop with one line if this hch has no budgeted sweeps (a silently ignored setting would lie)."""
    if "budgets" not in SweepConfig.model_fields or "spent" not in RunRecord.model_fields:
        sys.exit("budget_sweep_study: this hch has no budgeted HCH (SweepConfig.budgets): the study needs it")


async def sweep(name: str) -> tuple[list[Item], Outcome]:
    items = list(TASKS[name].generate(QUESTIONS, SEED, max_depth=TOP, facts=facts_of(name)))
    config = SweepConfig(source=f"task:{name}", task=name, questions=len(items), seed=SEED, depths=[],
                         budgets=BUDGETS, policy=POLICY, facts=facts_of(name))
    folder = RUNS / f"example-budget-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    return items, await run_sweep(items, config, {1: make_policy(POLICY)}, folder)


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def whole_tree(records: list[RunRecord]) -> dict[str, int]:
    """What each question's whole tree is charged: its run at the largest budget, where every tree fits."""
    return {r.id: r.spent or 0 for r in records if r.budget == max(BUDGETS)}


def misfits(records: list[RunRecord], budget: int) -> int:
    """Runs at `budget` resting on a guess although the question's whole tree is charged no more than it."""
    tree = whole_tree(records)
    return sum(r.guess_on_path and tree[r.id] <= budget for r in records if r.budget == budget)


def table(rows: list[Row], records: list[RunRecord]) -> list[str]:
    lines = ["| budget | acc | 95% CI | acc* | root guessed | calls in the tree | calls charged | charged / budget | "
             "tree fits, still a guess |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        ci = "—" if row.ci_low is None else f"{row.ci_low:.2f}-{row.ci_high:.2f}"
        lines.append(f"| {row.budget} | {share(row.accuracy)} | {ci} | {share(row.guess_free_accuracy)} | "
                     f"{row.guesses} | {row.calls_mean:.1f} | {row.spent_mean or 0:.1f} | "
                     f"{(row.spent_mean or 0) / (row.budget or 1):.2f} | {misfits(records, row.budget or 0)} |")
    return lines


def enough(records: list[RunRecord]) -> str:
    """The smallest budget at which every run was right without a guess, and what those runs were charged."""
    clean = [b for b in BUDGETS if all(r.correct and not r.guess_on_path for r in records if r.budget == b)]
    if not clean:
        return "no budget swept was enough for every question"
    first = clean[0]
    charged = [r.spent or 0 for r in records if r.budget == first]
    return (f"every run right without a guess from budget {first} on (charged {min(charged)} to {max(charged)} "
            "calls per question there)")


CURVES = [
    "What each curve is (one colour per task; the x axis is the budget on a log scale):",
    "",
    "- **Accuracy (top left; solid: accuracy, dashed: guess-free).** A run is right without a guess once its "
    "budget, split evenly at each step, pays for every subtree of the question's tree; below that the honest "
    "expert asks while the budget pays for its step, the nodes that run out guess, and the root's answer rests "
    "on those guesses (right only by luck: the gap between the solid and the dashed line). The budget a "
    "question needs grows with the depth it needs and with the tree's width, so each curve climbs over the "
    "budgets that span the task's tree sizes.",
    "- **Calls in the tree (top right).** Policy calls per question as a standalone run with merged copies "
    "makes them: identical subquestions share one subtree. They level off once every tree fits: a larger "
    "budget is not spent (what a subtree does not spend returns to its asker, and the root keeps it).",
    "- **Calls charged to the budget (bottom left).** What the budget paid for: a reused subtree is charged to "
    "every copy that reused it (in HCH each copy does its own work), so the charge is at least the calls in "
    "the tree; it is never above the budget.",
    "- **Intervals** are 95% over the task's 3 instances (Wilson's with each instance one trial where every "
    "instance scores the same), so they are wide: the study shows where each curve climbs, not its exact height.",
    "- **Below one call per question.** With facts hidden a primitive question is answered by the environment "
    "at no cost, so at budget 1 a task whose questions include primitive ones averages under one call.",
    "",
]


def measured(found: dict[str, tuple[list[Row], list[RunRecord]]]) -> list[str]:
    """What the runs show, counted from them."""
    over = {name: max((r.spent_mean or 0) / r.calls_mean for r in rows if r.budget == max(BUDGETS))
            for name, (rows, _) in found.items()}
    most = max(over, key=lambda name: over[name])
    wasted = {name: max(misfits(records, b) for b in BUDGETS) for name, (_, records) in found.items()}
    worst = max(wasted, key=lambda name: wasted[name])
    largest = {name: max(whole_tree(records).values()) for name, (_, records) in found.items()}
    dips = [name for name, (rows, _) in found.items()
            if any(b.accuracy is not None and a.accuracy is not None and b.accuracy < a.accuracy
                   for a, b in itertools.pairwise(rows))]
    return [
        "What the runs show:", "",
        f"- **Charge against calls.** At budget {max(BUDGETS)} the charge exceeds the calls in the tree by at most "
        f"{over[most] - 1:.0%} ({most}): with facts hidden these trees seldom repeat a subquestion within a copy's "
        "reach, so reuse saves little here.",
        "- **The default share wastes budget.** A step splits all its node has (but one call) evenly, whatever "
        "each subtree needs, so a run can end in guesses with a budget larger than its whole tree's charge: the "
        "last column counts such runs (at most " + f"{wasted[worst]} of {QUESTIONS} in {worst} at one budget). "
        "The largest trees are charged " + ", ".join(f"{largest[n]} ({n})" for n in found) + " calls.",
        "- **More budget is not always better for the answer.** " + (
            f"Accuracy falls from one budget to the next somewhere in {', '.join(dips)}: with one call the root "
            "guesses the whole answer, with a few more it asks, and its answer then rests on guesses further "
            "down, which can be right less often." if dips else "Accuracy never falls as the budget grows here."),
    ]


async def main() -> None:
    require()
    OUT.mkdir(parents=True, exist_ok=True)
    accuracy = Panel("accuracy", "honest expert: accuracy (dashed: guess-free)", BUDGET, "accuracy", share=True)
    calls = Panel("calls", "policy calls in the tree per question", BUDGET, "calls per question (mean)", log=True)
    charged = Panel("charged", "calls charged to the budget per question", BUDGET, "calls charged (mean)", log=True)
    report = ["# Budgeted HCH: a sweep over the budget of policy calls", "",
              f"Generated by `python examples/budget_sweep_study.py` ({QUESTIONS} questions per task, seed {SEED}, "
              f"budgets {', '.join(map(str, BUDGETS))}, depth unbounded, the honest expert, facts hidden for the "
              "paper's tasks; arithmetic has no facts to hide).", "",
              "Why facts hidden: the task's environment then answers every look-up for free, so each policy call "
              "the budget pays for is H's own work (a decomposition or a combination), and a question's tree is "
              "the paper's. With facts shown the expert would spend a call on each look-up.", "",
              "![budget sweep](budget-sweep.png)", ""]
    tables: list[str] = []
    found: dict[str, tuple[list[Row], list[RunRecord]]] = {}
    for colour, name in enumerate(TASKS):
        _, outcome = await sweep(name)
        rows = aggregate(outcome.records, policy=POLICY)
        budgets = [r.point for r in rows]
        accuracy.series.append(Series(name, budgets, [r.accuracy or 0.0 for r in rows], colour=colour))
        accuracy.series.append(Series(f"{name}, guess-free", budgets, [r.guess_free_accuracy or 0.0 for r in rows],
                                      dashed=True, colour=colour))
        calls.series.append(Series(name, budgets, [r.calls_mean for r in rows], colour=colour))
        charged.series.append(Series(name, budgets, [r.spent_mean or 0.0 for r in rows], colour=colour))
        tables += ["", f"### {name} (facts {facts_of(name)})", "", *table(rows, outcome.records), "",
                   enough(outcome.records) + "."]
        found[name] = (rows, outcome.records)
    save(render([accuracy, calls, charged], f"budgeted HCH, honest expert, {QUESTIONS} questions per task"),
         OUT / "budget-sweep")
    report += [*CURVES, *measured(found), "",
               "acc: accuracy · acc*: guess-free accuracy (a right answer with a guess behind it counts as wrong) · "
               "root guessed: runs whose root guessed · calls in the tree: mean policy calls per question as a "
               "standalone run makes them · calls charged: mean calls charged to the budget (never above it).",
               *tables]
    (OUT / "README.md").write_text("\n".join(report) + "\n", encoding="utf-8")
    print(f"wrote {OUT}/README.md and budget-sweep.png/svg")


if __name__ == "__main__":
    anyio.run(main)
