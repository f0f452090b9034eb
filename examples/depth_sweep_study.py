"""Run: python examples/depth_sweep_study.py   (offline, a few minutes; rewrites examples/depth-sweep/)

Depth sweeps with the offline experts, the question HCH raises: how do answer quality and cost
change with n? Every figure counts what was really done (a vote of k is k policy invocations), every
interval is taken over task instances, and guess-free accuracy counts a right answer that rests on
a guess as wrong.

1. Every built-in task (arithmetic and the five tasks of Christiano, Shlegeris and Amodei 2018), 60
   questions each, HCH_0 to HCH_6, the honest expert (it decomposes wherever it may ask and guesses
   only where it may not) with the facts hidden behind the task's environment, as in the paper. The
   0..6 sweep's cost is set against its depth-6 runs made alone, as measured; the depth-aware
   `expert(early_guess)` is swept too, to show what its early guesses hid.
2. Reliability amplification on permutation powering: an expert that slips on 5% of its actions (a
   look-up, a combination or a subquestion), alone and as vote:3 / vote:5 over independent copies,
   with invocations counted (examples/reliability_study.py compares voting with checking at HCH_6).

Tables and figures go to examples/depth-sweep/; the sweeps themselves (every trace, runs.jsonl,
per-bucket CSVs) to studies/example-*/ (not committed), each started afresh so that its cost
figures are its own. The same sweeps from the command line are resumable (see the README).
"""

from __future__ import annotations

import inspect
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio

from hch.policies.spec import make_policy
from hch.policies.vote import vote
from hch.study.plot import Panel, Series, render, save
from hch.study.question_set import Item
from hch.study.report import write_outputs
from hch.study.rows import Row, aggregate
from hch.study.sweep import Outcome, RunRecord, SweepConfig, run_sweep
from hch.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "depth-sweep"
RUNS = ROOT / "studies"
QUESTIONS, SEED, DEPTHS = 60, 1, list(range(7))
HONEST, EARLY = "expert", "expert(early_guess)"
FACTS = "hidden"
"""How the paper tasks run H: the paper's environment (primitive questions answered from hidden
facts). Arithmetic has no facts to hide, so it runs with facts shown (there are none to see)."""
NOISE, VOTES = 0.05, (1, 3, 5)
NOISY = f"expert(noise={NOISE}, seed={SEED}, on=all)"
RELIABILITY: dict[str, Any] = {"facts": FACTS, "copies": "independent"}
"""The reliability sweep's settings: independent copies, so that no two places share a sample."""

DEPARTURES = re.compile(r"<!-- departures: start[^>]*-->\n(.*?)<!-- departures: end -->", re.DOTALL)
"""Where the README's Depth sweeps section keeps the table of where the tasks depart from the 2018 paper."""


def departures() -> str:
    """The README's table of where the tasks depart from the 2018 paper (one source for both READMEs)."""
    found = DEPARTURES.search((ROOT / "README.md").read_text(encoding="utf-8"))
    if found is None:
        sys.exit("depth_sweep_study: README.md has lost its table of departures from the paper")
    return found[1].strip()


def require() -> None:
    """Stop with one line if this hch lacks a setting the study uses (a silently ignored one would lie)."""
    missing = [key for key in {"facts": FACTS, **RELIABILITY} if key not in SweepConfig.model_fields]
    if "facts" not in inspect.signature(next(iter(TASKS.values())).generate).parameters:
        missing.append("facts in Task.generate")
    if missing:
        sys.exit(f"depth_sweep_study: this hch has no {', '.join(missing)}: the study needs them")


def facts_of(name: str) -> str:
    """The facts mode a task is swept in: hidden where the task has an environment to answer from them."""
    return FACTS if getattr(TASKS[name], "oracle", None) is not None else "shown"


def generate(name: str, count: int, top: int) -> list[Item]:
    """The task's questions, with the depth each needs under its facts mode, none needing more than `top`."""
    generator: Any = TASKS[name].generate
    return list(generator(count, SEED, max_depth=top, facts=facts_of(name)))


async def sweep(name: str, items: list[Item], spec: str, depths: list[int], folder: str,
                votes: tuple[int, ...] = (1,), settings: dict[str, Any] | None = None) -> tuple[SweepConfig, Outcome]:
    """One fresh sweep (its output directory emptied first, so its cost figures are its own)."""
    config = SweepConfig(source=f"task:{name}", task=name, questions=len(items), seed=SEED, depths=depths,
                         policy=spec, votes=list(votes), **(settings or {"facts": facts_of(name)}))
    base = make_policy(spec)
    shutil.rmtree(RUNS / folder, ignore_errors=True)
    return config, await run_sweep(items, config, {k: vote(k, base) for k in votes}, RUNS / folder)


def made(outcome: Outcome) -> tuple[int, int]:
    """Policy invocations and calls the sweep made."""
    return sum(r.invocations_made for r in outcome.records), sum(r.calls_made for r in outcome.records)


def ci(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"{low:.2f}-{high:.2f}"


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


TASKS_CURVES = [
    "What each curve is:",
    "",
    "- **Accuracy (solid, left).** Below the depth a question needs, the honest expert still decomposes as far "
    "as it may ask; its nodes at depth 0 guess, so the root's answer rests on guesses and is right only by "
    "luck. At and above that depth every run is right (the line under each task's table counts it). The "
    "generator spreads each instance's questions evenly over the depths they need, so HCH_n gets right about "
    "the share of questions needing n or less, plus its lucky guesses: a straight climb to 1 at n = 6.",
    "- **Guess-free accuracy (dashed, left).** The same runs with every answer that rests on a guess counted "
    "wrong: exactly the share of questions needing n or less. The gap to the solid line is lucky guesses, "
    "widest where a guess is easy to get right: arithmetic (a node estimates from the numbers in its "
    "question), a wildcard sum (a small number near 0), a path length (1 to 6), a union-find value (one of 10 "
    "or unknown); rare with 64 names to pick from (permutation powering).",
    "- **Policy invocations per question (right; solid: honest, dashed: early guess).** The honest expert pays "
    "for the tree it expands even when the tree ends in guesses, so its cost climbs with n for every question; "
    f"`{EARLY}` guesses at once when it sees its depth is short, so below n = 6 it is cheaper (in sequential "
    "assignments it can tell only from the facts, which are hidden, so there the two act alike). At n = 6 the "
    "two build the same trees. With facts hidden a primitive question costs no call "
    "(the environment answers it), so a task whose set includes primitive questions starts below 1 at n = 0.",
    "- **Sweep against its deepest runs (table above).** A subtree that ended without a guess is reused at "
    "every other depth it fits; one that ended in a guess is not (it is not what a deeper run gets), so the "
    "honest expert's shallow runs, whose trees end in guesses, are mostly new work.",
    "- **Intervals.** 95% over the task's instances (6 to 8 here, 10 questions each). Where every instance "
    "scores the same the bootstrap has nothing to resample and the interval is a point (e.g. shortest path at "
    "n = 2 to 5: in every instance exactly the questions needing n or less are right, and no guess was lucky); "
    "at 100% it is Wilson's with each instance one trial, which is why it reaches down to about 0.6.",
    "",
]
"""What each curve of the tasks figure is (the numbers are in the tables the study writes)."""


def early_accuracy(accuracies: dict[str, dict[str, list[float]]]) -> str:
    """How the early guess's accuracy compares with the honest expert's, task by task, as measured."""
    lower, higher, same, mixed = "lower at some n, never higher", "higher at some n, never lower", \
        "the same at every n", "lower at some n, higher at others"
    found: dict[str, list[str]] = {lower: [], higher: [], same: [], mixed: []}
    for name, honest in accuracies[HONEST].items():
        pairs = list(zip(accuracies[EARLY][name], honest, strict=True))
        below, above = any(e < h for e, h in pairs), any(e > h for e, h in pairs)
        found[mixed if below and above else lower if below else higher if above else same].append(name)
    said = "; ".join(f"{how} in {', '.join(names)}" for how, names in found.items() if names)
    return (f"- **Early guess, accuracy (tables not shown).** Below the depth a question needs, `{EARLY}`'s answer "
            "is its root's guess of the whole answer, the honest expert's the guesses it passes up from depth 0; "
            "neither is HCH's answer, and which guess does better depends on the guesses' distributions. "
            f"Its accuracy against the honest expert's, as measured: {said}.")


def verdict(records: list[RunRecord]) -> str:
    """What the runs show about the depth each question needs, counted from the runs themselves."""
    at = [r for r in records if r.required_depth is not None and r.depth >= r.required_depth]
    below = [r for r in records if r.required_depth is not None and r.depth < r.required_depth]
    right = [r for r in below if r.correct]
    lucky = sum(r.guess_on_path for r in right)
    return (f"At and above the depth a question needs: {sum(bool(r.correct) for r in at)} of {len(at)} runs right, "
            f"{sum(r.guess_on_path for r in at)} with a guess behind the answer. Below it: {len(right)} of "
            f"{len(below)} right, {lucky} of them by a lucky guess and {len(right) - lucky} without a guess.")


def depth_table(rows: list[Row], first: str) -> list[str]:
    lines = [f"| {first} | acc | 95% CI | acc* | 95% CI | root guessed | guess behind | calls | invocations | "
             "invocations made |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        key = row.depth if first == "n" else f"{row.variant} | {row.depth}" if first == "variant | n" else (
            f"{row.variant} | {row.required_depth}")
        lines.append(
            f"| {key} | {share(row.accuracy)} | {ci(row.ci_low, row.ci_high)} | {share(row.guess_free_accuracy)} | "
            f"{ci(row.guess_free_low, row.guess_free_high)} | {row.guesses} | {row.guessed_on_path} | "
            f"{row.calls_mean:.1f} | {row.invocations_mean:.1f} | {row.invocations_made} |")
    if first != "n":
        lines[0] = lines[0].replace(f"| {first} |", "| " + " | ".join(first.split(" | ")) + " |")
        lines[1] = "|---" + lines[1]
    return lines


async def tasks_part(report: list[str]) -> None:
    report += [f"## 1. Every task, HCH_0 to HCH_6, honest expert, facts {FACTS} (arithmetic has none)", "",
               "| task | facts | variant | sweep invocations | depth-6 runs alone | sweep / alone | sweep calls |",
               "|---|---|---|---:|---:|---:|---:|"]
    accuracy = Panel("accuracy", "honest expert: accuracy (dashed: guess-free)", "depth n of HCH_n",
                     "accuracy", share=True)
    cost = Panel("invocations", "policy invocations (dashed: early guess)",
                 "depth n of HCH_n", "invocations per question (mean)", log=True)
    tables: list[str] = []
    ratios: dict[str, list[float]] = {HONEST: [], EARLY: []}
    accuracies: dict[str, dict[str, list[float]]] = {HONEST: {}, EARLY: {}}
    for colour, name in enumerate(TASKS):
        items = generate(name, QUESTIONS, max(DEPTHS))
        for spec, tag in ((HONEST, "honest"), (EARLY, "early-guess")):
            _, outcome = await sweep(name, items, spec, DEPTHS, f"example-{name}-{tag}")
            _, alone = await sweep(name, items, spec, [max(DEPTHS)], f"example-{name}-{tag}-deepest-alone")
            (swept, calls), (deepest, _) = made(outcome), made(alone)
            ratios[spec].append(swept / deepest)
            report.append(f"| {name} | {facts_of(name)} | `{spec}` | {swept} | {deepest} | {swept / deepest:.2f} | "
                          f"{calls} |")
            rows = aggregate(outcome.records, policy=spec)
            depths = [r.depth for r in rows]
            accuracies[spec][name] = [r.accuracy or 0.0 for r in rows]
            cost.series.append(Series(name if spec == HONEST else f"{name}, early guess", depths,
                                      [r.invocations_mean for r in rows], dashed=spec == EARLY, colour=colour))
            if spec == HONEST:
                accuracy.series.append(Series(name, depths, [r.accuracy or 0.0 for r in rows], colour=colour))
                accuracy.series.append(Series(f"{name}, guess-free", depths,
                                              [r.guess_free_accuracy or 0.0 for r in rows], dashed=True, colour=colour))
                tables += ["", f"### {name} (facts {facts_of(name)})", "", *depth_table(rows, "n"), "",
                           verdict(outcome.records)]
    save(render([accuracy, cost], f"six task suites, {QUESTIONS} questions each, facts {FACTS}"), OUT / "tasks")
    honest, early = (f"{min(ratios[s]):.2f} to {max(ratios[s]):.2f}" for s in (HONEST, EARLY))
    report += ["", f"The whole 0..6 sweep made {honest} times the policy invocations of its depth-6 runs made alone "
               f"with the honest expert, and {early} times with `{EARLY}`, as measured (each sweep started with empty "
               "caches).", "", "![tasks](tasks.png)", "", *TASKS_CURVES[:-1], early_accuracy(accuracies), "", *tables]


async def reliability_part(report: list[str]) -> None:
    name = "permutation-powering"
    items = generate(name, 120, max(DEPTHS))
    top = max(item.required_depth or 0 for item in items)
    config, outcome = await sweep(name, items, NOISY, list(range(top + 1)), "example-reliability", VOTES,
                                  RELIABILITY)
    folder = RUNS / "example-reliability"
    write_outputs(folder, config, outcome)
    for file in ("plot.png", "plot.svg", "summary.csv", "buckets.csv"):
        shutil.copy(folder / file, OUT / f"reliability-{file}")
    deepest = [r for r in aggregate(outcome.records, by_bucket=True, policy=NOISY) if r.depth == top]
    rows = aggregate(outcome.records, policy=NOISY)
    flags = " ".join(f"--{key} {value}" for key, value in RELIABILITY.items())
    report += ["", f"## 2. Reliability: {name}, an expert slipping on {NOISE:.0%} of its actions, alone and voting", "",
               f"`hch sweep --task {name} -n 120 --seed {SEED} --depths 0-{top} --policy \"{NOISY}\" "
               f"--votes {','.join(map(str, VOTES))} {flags}`", "",
               "![reliability](reliability-plot.png)", "", *reliability_curves(rows, deepest, top),
               f"At n = {top}, by the depth a question needs:", "",
               *depth_table(deepest, "variant | needs"), "", "By depth (all questions):", "",
               *depth_table(rows, "variant | n")]


def reliability_curves(rows: list[Row], deepest: list[Row], top: int) -> list[str]:
    """What each curve of the reliability figure is, with the numbers it shows."""
    at_top = {r.votes: r for r in rows if r.depth == top}
    names = {k: at_top[k].variant for k in VOTES}
    by_needs = {k: ", ".join(share(r.accuracy) for r in deepest if r.votes == k) for k in VOTES}
    costs = "; ".join(f"{names[k]} {at_top[k].calls_mean:.1f} calls and {at_top[k].invocations_mean:.1f} invocations "
                      f"({at_top[k].invocations_mean / at_top[1].invocations_mean:.1f} times one copy's)"
                      for k in VOTES if k > 1)
    return [
        "What each curve is:", "",
        "- **Accuracy against depth (top left; dashed: guess-free).** Below the depth a question needs the "
        "answer rests on guesses, as in part 1; above it, on slips. At n = "
        f"{top}: " + ", ".join(f"{share(at_top[k].accuracy)} for {names[k]}" for k in VOTES) + ".",
        "- **Policy invocations per question (top middle).** What each variant really did: a vote of k copies is "
        f"k invocations per call. At n = {top}, per question: one copy {at_top[1].calls_mean:.1f} calls and as many "
        f"invocations; {costs}. A vote can cost more than k times one copy: a lone copy's slips cut some of its "
        f"trees short ({at_top[1].guesses} of its runs at n = {top} ended in a guess, which a question within "
        "reach never does without a slip, e.g. a subquestion asked wrongly that needs more depth than is left).",
        "- **By the depth a question needs, one panel per variant.** Each line is one bucket of questions: it "
        "steps up at the depth the bucket needs, to the share of those runs that no slip reached.",
        f"- **At n = {top}, by the depth a question needs (bottom right).** The compounding: a question needing "
        "more depth rests on more actions, each of which may slip. Accuracy for the buckets needing 0, 1, ...: "
        + "; ".join(f"{names[k]} {by_needs[k]}" for k in VOTES) + ". A vote goes wrong at a call only when "
        "its copies' slips outvote the right action (or tie it and the lowest-numbered copy slipped).",
        "",
    ]


async def main() -> None:
    require()
    OUT.mkdir(parents=True, exist_ok=True)
    report = ["# Depth sweeps with the offline experts", "",
              f"Generated by `python examples/depth_sweep_study.py` ({QUESTIONS} questions per task, seed {SEED}, "
              f"facts {FACTS} for the paper's tasks).", "",
              "acc: accuracy · acc*: guess-free accuracy (a right answer with a guess behind it counts as wrong) · "
              "95% intervals over task instances · root guessed: runs whose root guessed · guess behind: runs "
              "with a guess anywhere behind the answer · calls, invocations: means per question as a standalone "
              "run makes them (a vote of k is k invocations per call) · invocations made: what the sweep made.", "",
              "## Where the tasks depart from the 2018 paper", "", departures(), ""]
    await tasks_part(report)
    await reliability_part(report)
    (OUT / "README.md").write_text("\n".join(report) + "\n", encoding="utf-8")
    print(f"wrote {OUT}/README.md, tasks.png/svg and reliability-*")


if __name__ == "__main__":
    anyio.run(main)
