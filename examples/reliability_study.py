"""Run: python examples/reliability_study.py   (offline, about 20 s of CPU; rewrites examples/reliability/)

Reliability amplification with honest noise, counted honestly: a noisy H answering permutation
powering questions (sigma^k(x), Christiano, Shlegeris and Amodei 2018) as HCH_6, with independent
copies (`copies="independent"`: every place in the tree is its own copy of H and draws its own
slips), compared with the same H made more reliable in three ways:

- voting: `vote(K, P)`, K copies of P act on every workspace and the majority action wins;
- checking: `check(P, P')`, P acts, and each answer P gives is confirmed by P' (an independently
  seeded copy of the same noisy expert) acting on the same workspace; an unconfirmed answer is
  asked again once (`retries=1`), then returned marked unverified;
- a vote over different policies: `vote(P, P', P'')`, three differently seeded noisy experts.

Each is held against plain voting (P alone, vote:K) at exactly its own invocations per question: the
best mix of two plain votes (a share of the questions answered by each) spending the same.

P slips with probability `NOISE` on every action (`on=all`: a wrong look-up, a wrong combination, a
wrong subquestion), wrong answers uniform over the other names; then on look-ups only; then on every
action with `correlation=CORRELATION` (replicas of P share that share of their slip draws; P', P''
none). Every figure counts policy invocations, what was really done: a vote of K is K invocations
per call, a check is P's invocations plus the verifier's, retries included. Facts are shown to H
(the paper's hidden-facts environment is a separate option; here the noise model is the point).

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
from hch.policies.vote import panel, vote
from hch.run.engine import answer
from hch.run.policy import Policy
from hch.study.grading import grade
from hch.study.question_set import Item
from hch.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "reliability"
TASK, QUESTIONS, SEED, DEPTH, NOISE = "permutation-powering", 120, 1, 6, 0.03
CORRELATION = 0.5
"""In the third setting, the chance that a copy's slip draw is the one all replicas of P share."""
P = f"expert(noise={NOISE}, seed=1, on=all)"
P_PRIME = f"expert(noise={NOISE}, seed=2, on=all)"
P_SECOND = f"expert(noise={NOISE}, seed=3, on=all)"
SETTINGS = ("all", "lookups", f"all, R={CORRELATION:g}")
"""Which of P's actions slip (`all`, `lookups`), and `all` with replicas of P sharing slips."""
PLAIN = ("P alone", "vote:2", "vote:3", "vote:5")
"""Plain voting: K copies of P (P alone is K = 1), the baseline every other variant is held against."""
LOOKUP_VARIANTS = ("P alone", "check(P, P')", "vote:2", "vote:3")
"""The variants also run with noise on look-ups only."""
CORRELATED_VARIANTS = ("P alone", "check(P, P')", "vote:3", "vote(P, P', P'')")
"""The variants also run with correlated copies."""


def variants(setting: str = "all") -> dict[str, Callable[[], Policy]]:
    """The policies compared, by the label used in the table and the plot, under one of `SETTINGS`."""
    on, _, shared = setting.partition(", R=")
    extra = f", correlation={shared}" if shared else ""

    def spec(base: str) -> str:
        return base.replace("on=all", f"on={on}").replace(")", extra + ")")

    p, p_prime, p_second = spec(P), spec(P_PRIME), spec(P_SECOND)
    every: dict[str, Callable[[], Policy]] = {
        "P alone": lambda: make_policy(p),
        "check(P, P')": lambda: check(make_policy(p), make_policy(p_prime), retries=1),
        "vote:2": lambda: vote(2, make_policy(p)),
        "vote:3": lambda: vote(3, make_policy(p)),
        "check(vote:3, P')": lambda: check(vote(3, make_policy(p)), make_policy(p_prime), retries=1),
        "vote:5": lambda: vote(5, make_policy(p)),
        "vote(P, P', P'')": lambda: panel([make_policy(p), make_policy(p_prime), make_policy(p_second)]),
    }
    wanted = {"all": [k for k in every if k != "vote(P, P', P'')"], "lookups": LOOKUP_VARIANTS}.get(
        setting, CORRELATED_VARIANTS)
    return {k: every[k] for k in wanted}


@dataclass
class Outcome:
    """One variant's runs over the question set."""

    label: str
    fingerprint: str
    on: str
    """Which of P's actions slip, and whether replicas share slips: one of `SETTINGS`."""
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
    with every action noisy, then the main ones with noisy look-ups only, then with correlated copies."""
    items = get_task(TASK).generate(questions, SEED, max_depth=depth)
    return [await run_variant(label, make(), items, depth, setting)
            for setting in SETTINGS for label, make in variants(setting).items()]


def cost(outcome: Outcome) -> float:
    """Policy invocations per question."""
    return outcome.invocations / outcome.questions


def plain_mix(outcomes: list[Outcome], setting: str, spend: float) -> tuple[str, float] | None:
    """Plain voting at `spend` invocations per question: the most accurate mix of two plain votes (a
    share w of the questions answered by one, the rest by the other) whose mean invocations are `spend`,
    as (what it is, its accuracy); None where `spend` is outside the plain votes' costs."""
    plain = [o for o in outcomes if o.on == setting and o.label in PLAIN]
    best: tuple[str, float] | None = None
    for a in plain:
        for b in plain:
            if not cost(a) <= spend <= cost(b) or (a is b and cost(a) != spend):
                continue
            w = 1.0 if a is b or cost(b) == cost(a) else (cost(b) - spend) / (cost(b) - cost(a))
            accuracy = w * a.accuracy + (1 - w) * b.accuracy
            said = f"`{a.label}`" if w == 1 else f"`{b.label}`" if w == 0 else (
                f"{w:.2f} `{a.label}` + {1 - w:.2f} `{b.label}`")
            if best is None or accuracy > best[1]:
                best = (said, accuracy)
    return best


def equal_cost_table(outcomes: list[Outcome]) -> list[str]:
    """Every variant that is not plain voting, against plain voting at the same invocations per question."""
    lines = ["| noisy actions | policy | invocations / question | accuracy | plain voting at the same invocations "
             "(shares of the questions) | its accuracy |", "|---|---|---:|---:|---|---:|"]
    for o in outcomes:
        if o.label in PLAIN:
            continue
        mix = plain_mix(outcomes, o.on, cost(o))
        said, accuracy = mix if mix is not None else ("beyond the plain votes run", None)
        lines.append(f"| {o.on} | `{o.label}` | {cost(o):.1f} | {o.accuracy:.3f} | {said} | "
                     f"{'—' if accuracy is None else f'{accuracy:.3f}'} |")
    return lines


def table(outcomes: list[Outcome]) -> list[str]:
    lines = ["| noisy actions | policy | accuracy | 95% CI (bootstrap over instances) | calls / question | "
             "invocations / question | unverified answers |", "|---|---|---:|---:|---:|---:|---:|"]
    for o in outcomes:
        low, high = o.interval()
        lines.append(f"| {o.on} | `{o.label}` | {o.accuracy:.3f} | {low:.2f}-{high:.2f} | "
                     f"{o.calls / o.questions:.1f} | {o.invocations / o.questions:.1f} | {o.unverified} |")
    return lines


def plot(outcomes: list[Outcome], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    labels = dict.fromkeys(label for setting in SETTINGS for label in variants(setting))
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    markers = dict(zip(SETTINGS, ("o", "s", "^"), strict=True))
    for setting, style in zip(SETTINGS, ("--", ":", "-."), strict=True):
        plain = sorted(cost(o) for o in outcomes if o.on == setting and o.label in PLAIN)
        spends = [plain[0] + (plain[-1] - plain[0]) * i / 60 for i in range(61)]
        mixes = [plain_mix(outcomes, setting, spend) for spend in spends]
        right.plot(spends, [m[1] if m else float("nan") for m in mixes], style, color="grey", lw=1,
                   label=f"plain voting at equal cost ({setting})")
    for o in outcomes:
        depths = sorted(o.by_depth)
        if o.on == "all":
            left.plot(depths, [sum(o.by_depth[d]) / len(o.by_depth[d]) for d in depths], marker="o", label=o.label,
                      color=colours[o.label])
        low, high = o.interval()
        spent = cost(o)
        right.errorbar([spent], [o.accuracy], yerr=[[o.accuracy - low], [high - o.accuracy]], capsize=3,
                       marker=markers[o.on], mfc="white" if o.on != "all" else None, color=colours[o.label])
        suffix = {"all": "", "lookups": " (look-ups)"}.get(o.on, f" (R={CORRELATION:g})")
        below = o.on in SETTINGS[:2]  # the correlated setting's labels go above left, clear of the others
        right.annotate(o.label + suffix, (spent, o.accuracy), textcoords="offset points", fontsize=7,
                       xytext=(6, -10) if below else (-6, 8), ha="left" if below else "right")
    left.set(xlabel="depth the question needs", ylabel="accuracy",
             title=f"HCH_{DEPTH}, every action noisy, by required depth")
    right.set(xlabel="policy invocations per question (log)", ylabel="accuracy (95% CI over instances)",
              title=f"against cost (filled: all noisy; squares: look-ups; triangles: R={CORRELATION:g})",
              xscale="log")
    left.legend(fontsize=8)
    right.legend(fontsize=7, loc="lower right")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    fig.suptitle(f"{TASK}: P's actions wrong {NOISE:.0%} of the time, independent copies", fontsize=10)
    fig.tight_layout()
    for suffix in (".png", ".svg"):
        fig.savefig(path.with_suffix(suffix), dpi=110)
    plt.close(fig)


def readme(outcomes: list[Outcome], seconds: float) -> str:
    by = {o.label: o for o in outcomes if o.on == "all"}
    shared = {o.label: o for o in outcomes if o.on == SETTINGS[2]}
    depths = sorted({d for o in outcomes for d in o.by_depth})
    needs = f"{depths[0]}..{depths[-1]}"
    checked, three = by["check(P, P')"], by["vote:3"]
    per = {label: o.invocations / o.calls for label, o in by.items()}
    panelled = shared["vote(P, P', P'')"]
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
        f"answer. P' is `{P_PRIME}` and P'' `{P_SECOND}`: the same H with other seeds. Three settings: every "
        "action noisy (`all`); look-ups only (`lookups`, `on=lookups`); every action noisy with "
        f"`correlation={CORRELATION:g}` (`{SETTINGS[2]}`): each draw of a copy of P (a replica in `vote:K`, or "
        "P at another place in the tree asked the same) is, with that probability, the draw all copies of P "
        "share, so they slip together; P' and P'' are other policies and share none of P's draws.",
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
        f"({per['vote:2']:.2f}, {per[three.label]:.2f} and {per['vote:5']:.2f} measured).",
        "- `check(vote:3, P')`: the vote's answer checked by P' (3 + 1 invocations per answering call, "
        "3 per ask, plus retries).",
        "- `vote(P, P', P'')` (correlated setting only): a vote over three different policies, one copy each, "
        "3 invocations per call like `vote:3`; its members share no draws, where `vote:3`'s replicas of P do.",
        "- Grey lines (right panel): plain voting at equal cost, per setting (below).",
        "",
        "**At equal cost.** Plain voting (`P alone`, `vote:2`, `vote:3`, `vote:5`) can spend any number of "
        "invocations per question between its cheapest and its dearest vote: answer a share w of the "
        "questions with one vote and the rest with another, and the mean invocations and the expected "
        "accuracy are the w-weighted means. The best such mix at each spend is the grey line; each other "
        "variant is held against it at exactly its own invocations per question (the shares are given; no "
        "interval is computed for a mix):",
        "",
        *equal_cost_table(outcomes),
        "",
        *equal_cost_verdict(outcomes),
        "",
        f"**Correlated copies.** With `correlation={CORRELATION:g}`, `vote:3` reaches "
        f"{shared['vote:3'].accuracy:.2f} (against {three.accuracy:.2f} with independent slips) and "
        f"`vote(P, P', P'')`, at {cost(panelled):.0f} invocations per question, "
        f"{panelled.accuracy:.2f}; `check(P, P')` {shared[checked.label].accuracy:.2f}. "
        "A majority of replicas that slip together votes for the same wrong action; policies that share no "
        "draws do not.",
        "",
        "**Caveats.** One question set and one noise seed; the intervals resample instances, not noise "
        "draws. Wrong answers are uniform over the other names (the most favourable case for plurality "
        "voting); `wrong=plausible` and `wrong=popular` (copies that slip agree on a wrong answer) are not "
        "run here. No call cache is used, so every invocation counted was made.",
        "",
    ])


def equal_cost_verdict(outcomes: list[Outcome]) -> list[str]:
    """One line per variant that is not plain voting: better, worse or level with plain voting at its cost."""
    lines = []
    for o in outcomes:
        mix = plain_mix(outcomes, o.on, cost(o))
        if o.label in PLAIN or mix is None:
            continue
        gap = o.accuracy - mix[1]
        how = "level with" if abs(gap) < 0.01 else f"{abs(gap):.2f} {'above' if gap > 0 else 'below'}"
        lines.append(f"- {o.on}: `{o.label}` is {how} plain voting at its cost.")
    return lines


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
