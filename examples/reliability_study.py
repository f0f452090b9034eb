"""Run: python examples/reliability_study.py   (offline, about 15 s of CPU; rewrites examples/reliability/)

Reliability amplification with honest noise, counted honestly: a noisy H answering permutation
powering questions (sigma^k(x), Christiano, Shlegeris and Amodei 2018) as HCH_6, with independent
copies (`copies="independent"`: every place in the tree is its own copy of H and draws its own
slips), compared with the same H made more reliable in two ways:

- voting: `vote(K, P)`, K copies of P act on every workspace and the majority action wins;
- checking: `check(P, P')`, P acts, and each answer P gives is confirmed by P' (an independently
  seeded copy of the same noisy expert) acting on the same workspace; an unconfirmed answer is
  asked again once (`retries=1`), then returned marked unverified.

P slips with probability `NOISE` on every action (`on=all`: a wrong look-up, a wrong combination, a
wrong subquestion), wrong answers uniform over the other names. Every figure counts policy
invocations, what was really done: a vote of K is K invocations per call, a check is P's
invocations plus the verifier's, retries included. Facts are shown to H (the paper's hidden-facts
environment is a separate option; here the noise model is the point).

Writes examples/reliability/README.md (the table and what each curve is), plot.png and plot.svg.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from hch.policies.check import check
from hch.policies.spec import make_policy
from hch.policies.vote import vote
from hch.run.engine import answer
from hch.run.policy import Policy
from hch.study.grading import grade
from hch.study.question_set import Item
from hch.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "reliability"
TASK, QUESTIONS, SEED, DEPTH, NOISE = "permutation-powering", 120, 1, 6, 0.03
P = f"expert(noise={NOISE}, seed=1, on=all)"
P_PRIME = f"expert(noise={NOISE}, seed=2, on=all)"
LOOKUP_VARIANTS = ("P alone", "check(P, P')", "vote:2", "vote:3")
"""The variants also run with noise on look-ups only."""


def variants(on: str = "all") -> dict[str, Callable[[], Policy]]:
    """The policies compared, by the label used in the table and the plot; `on`: which actions slip."""
    p, p_prime = P.replace("on=all", f"on={on}"), P_PRIME.replace("on=all", f"on={on}")
    every: dict[str, Callable[[], Policy]] = {
        "P alone": lambda: make_policy(p),
        "check(P, P')": lambda: check(make_policy(p), make_policy(p_prime), retries=1),
        "vote:2": lambda: vote(2, make_policy(p)),
        "vote:3": lambda: vote(3, make_policy(p)),
        "check(vote:3, P')": lambda: check(vote(3, make_policy(p)), make_policy(p_prime), retries=1),
        "vote:5": lambda: vote(5, make_policy(p)),
    }
    return every if on == "all" else {k: v for k, v in every.items() if k in LOOKUP_VARIANTS}


@dataclass
class Outcome:
    """One variant's runs over the question set."""

    label: str
    fingerprint: str
    on: str
    """Which of P's actions slip: `all` or `lookups`."""
    correct: dict[str, list[bool]] = field(default_factory=dict)
    """Per instance, whether each of its questions was answered right."""
    by_depth: dict[int, list[bool]] = field(default_factory=dict)
    """Per required depth, whether each question needing it was answered right."""
    calls: int = 0
    invocations: int = 0
    unverified: int = 0
    questions: int = 0

    @property
    def accuracy(self) -> float:
        flat = [c for runs in self.correct.values() for c in runs]
        return sum(flat) / len(flat)

    def interval(self, resamples: int = 2000) -> tuple[float, float]:
        """95% bootstrap interval over instances (questions of one instance are not independent)."""
        rng = random.Random(0)
        groups = list(self.correct.values())
        accuracies = []
        for _ in range(resamples):
            drawn = [c for _ in groups for c in rng.choice(groups)]
            accuracies.append(sum(drawn) / len(drawn))
        accuracies.sort()
        return accuracies[int(0.025 * resamples)], accuracies[int(0.975 * resamples) - 1]


async def run_variant(label: str, policy: Policy, items: list[Item], depth: int, on: str) -> Outcome:
    outcome = Outcome(label, policy.fingerprint, on)
    for item in items:
        result = await answer(item.question, depth=depth, policy=policy, context=item.context, copies="independent")
        right = bool(grade(result.answer, item.answer, item.grader, item.tolerance))
        outcome.correct.setdefault(item.instance or item.id, []).append(right)
        outcome.by_depth.setdefault(item.required_depth or 0, []).append(right)
        outcome.calls += result.summary.policy_calls
        outcome.invocations += result.summary.invocations
        outcome.unverified += result.summary.unverified
        outcome.questions += 1
    return outcome


async def study(questions: int = QUESTIONS, depth: int = DEPTH) -> list[Outcome]:
    """Every variant on the same questions (required depths 0..depth), HCH_depth, independent copies:
    with every action noisy, then the main ones with noisy look-ups only."""
    items = get_task(TASK).generate(questions, SEED, max_depth=depth)
    return [await run_variant(label, make(), items, depth, on)
            for on in ("all", "lookups") for label, make in variants(on).items()]


def table(outcomes: list[Outcome]) -> list[str]:
    lines = ["| noisy actions | policy | accuracy | 95% CI (bootstrap over instances) | calls / question | "
             "invocations / question | unverified answers |", "|---|---|---:|---:|---:|---:|---:|"]
    for o in outcomes:
        low, high = o.interval()
        lines.append(f"| {o.on} | `{o.label}` | {o.accuracy:.3f} | {low:.2f}-{high:.2f} | "
                     f"{o.calls / o.questions:.1f} | {o.invocations / o.questions:.1f} | {o.unverified} |")
    return lines


def plot(outcomes: list[Outcome], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {label: f"C{i}" for i, label in enumerate(variants())}
    for o in outcomes:
        depths = sorted(o.by_depth)
        if o.on == "all":
            left.plot(depths, [sum(o.by_depth[d]) / len(o.by_depth[d]) for d in depths], marker="o", label=o.label,
                      color=colours[o.label])
        low, high = o.interval()
        cost = o.invocations / o.questions
        right.errorbar([cost], [o.accuracy], yerr=[[o.accuracy - low], [high - o.accuracy]], capsize=3,
                       marker="o" if o.on == "all" else "s", mfc="white" if o.on != "all" else None,
                       color=colours[o.label])
        right.annotate(o.label + ("" if o.on == "all" else " (look-ups)"), (cost, o.accuracy),
                       textcoords="offset points", xytext=(6, -10), fontsize=7)
    left.set(xlabel="depth the question needs", ylabel="accuracy",
             title=f"HCH_{DEPTH}, every action noisy, by required depth")
    right.set(xlabel="policy invocations per question (log)", ylabel="accuracy (95% CI over instances)",
              title="against what it cost (filled: every action noisy; open: look-ups)", xscale="log")
    left.legend(fontsize=8)
    for axis in (left, right):
        axis.grid(alpha=0.3)
    fig.suptitle(f"{TASK}: P's actions wrong {NOISE:.0%} of the time, independent copies", fontsize=10)
    fig.tight_layout()
    for suffix in (".png", ".svg"):
        fig.savefig(path.with_suffix(suffix), dpi=110)
    plt.close(fig)


def readme(outcomes: list[Outcome], seconds: float) -> str:
    by = {o.label: o for o in outcomes if o.on == "all"}
    looked = {o.label: o for o in outcomes if o.on == "lookups"}
    lc, l2, l3 = looked["check(P, P')"], looked["vote:2"], looked["vote:3"]
    two = by["vote:2"]
    depths = sorted({d for o in outcomes for d in o.by_depth})
    needs = f"{depths[0]}..{depths[-1]}"
    alone, checked, three = by["P alone"], by["check(P, P')"], by["vote:3"]
    per = {label: o.invocations / o.calls for label, o in by.items()}
    return "\n".join([
        "# Reliability: voting and checking a noisy H, at what they cost",
        "",
        "`python examples/reliability_study.py` (offline, "
        f"{seconds:.0f} s here) rewrites this page, `plot.png` and `plot.svg`.",
        "",
        f"**Setup.** {QUESTIONS} permutation-powering questions (seed {SEED}; required depths {needs}, spread "
        f"evenly; 10 questions per instance), each answered once as HCH_{DEPTH} (deep enough for all of them) "
        "with `copies=\"independent\"`: every node is its own copy of H and draws its own slips, so a "
        "subquestion asked at two places can get two different answers. "
        f"P is `{P}`: the offline expert, which on every action (a look-up, a combination of sub-answers, "
        f"a subquestion) slips with probability {NOISE}: a wrong name, uniform over the other names, or a "
        "subquestion with its power moved by one. It corrupts its own honest action and never sees a gold "
        f"answer. P' is `{P_PRIME}`: the same H with other seeds.",
        "",
        *table(outcomes),
        "",
        "![accuracy by required depth, and against invocations](plot.png)",
        "",
        "**What each curve is.**",
        "",
        "- `P alone`: one invocation per policy call. The calls a question needs double with each level of "
        "depth it needs (sigma^k is sigma^(k/2) looked up twice, one after the other), and one slip "
        "anywhere in them is usually fatal, so accuracy falls with the depth a question needs.",
        "- `check(P, P')`: P acts; each answer it gives (look-ups and combinations; asks and guesses pass "
        "unchecked) is confirmed by P' acting on the same workspace. On disagreement P is asked once more "
        "with `refusal` saying the answer was not confirmed (the expert redoes the work, with a fresh draw); "
        "an answer still unconfirmed is kept and counted as unverified. Invocations: P's plus the verifier's, retries "
        f"included: {per[checked.label]:.2f} per call here. Asks are not checked, so a wrong subquestion "
        "goes through: that is what remains of its errors. (Unverified answers are mostly the verifier's own "
        "slips: a deterministic verifier that slipped on a workspace slips again on the retry, so P's answer, "
        "usually right, is kept and marked unverified.)",
        f"- `vote:2`, `vote:3`, `vote:5`: 2, 3 or 5 copies of P act on every workspace (asks too) and the "
        f"majority wins (ties: the lowest copy, so a vote of 2 keeps copy 0's action whenever the two "
        f"disagree: it costs twice as much and repairs nothing). Exactly 2, 3 and 5 invocations per call "
        f"({per[two.label]:.2f}, {per[three.label]:.2f} and {per['vote:5']:.2f} measured).",
        "- `check(vote:3, P')`: the vote's answer checked by P' (3 + 1 invocations per answering call, "
        "3 per ask, plus retries).",
        "",
        "**At matched invocations.** Read the right panel along the x axis. The closest match in cost is "
        f"`check(P, P')` ({checked.invocations / checked.questions:.0f} invocations per question, accuracy "
        f"{checked.accuracy:.2f}) against `vote:2` ({two.invocations / two.questions:.0f}, "
        f"{two.accuracy:.2f}): a second opinion used to check is worth far more than one used to vote. "
        f"`vote:3` costs {three.invocations / three.questions:.0f} ({three.accuracy:.2f}) and `vote:5` "
        f"{by['vote:5'].invocations / by['vote:5'].questions:.0f} ({by['vote:5'].accuracy:.2f}), against "
        f"{alone.invocations / alone.questions:.0f} ({alone.accuracy:.2f}) for P alone. Checking repairs "
        "answers (a slip must get past an independent second opinion) but not a wrong subquestion; voting "
        "repairs every kind of action, at K times the price. With noise on look-ups only (`on=lookups`, "
        f"the rows marked so), where every slip is an answer, `check(P, P')` reaches {lc.accuracy:.2f} for "
        f"{lc.invocations / lc.questions:.0f} invocations per question, `vote:2` {l2.accuracy:.2f} for "
        f"{l2.invocations / l2.questions:.0f}, `vote:3` {l3.accuracy:.2f} for {l3.invocations / l3.questions:.0f}.",
        "",
        "**Caveats.** One question set and one noise seed; the intervals resample instances, not noise "
        "draws. Wrong answers are uniform over the other names (the most favourable case for plurality "
        "voting). Not run here: `wrong=plausible` or `wrong=popular`, and `correlation=R` (copies sharing "
        "a slip), under which copies agree on wrong answers, which neither a majority nor a second "
        "opinion can catch. No call cache is used, so every invocation counted was made.",
        "",
    ])


def main() -> None:
    began = time.perf_counter()
    outcomes = anyio.run(study)
    OUT.mkdir(parents=True, exist_ok=True)
    plot(outcomes, OUT / "plot")
    (OUT / "README.md").write_text(readme(outcomes, time.perf_counter() - began), encoding="utf-8")
    print("\n".join(table(outcomes)))
    print(f"written: {OUT / 'README.md'}")


if __name__ == "__main__":
    main()
