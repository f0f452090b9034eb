"""What a sweep's runs left would spend, estimated before they start (`hch sweep --estimate`).

Per voting variant and depth: runs left x calls per run x tokens per call, and x dollars per call
(the model's price as the observed calls paid it). Calls, tokens and cost per run come from the runs
of this sweep already finished in its output directory: a pilot (`--pilot N` runs the first N
questions at every depth first) or an earlier, interrupted invocation. They are standalone figures
(what a run would spend with empty caches), so the estimate is an upper bound: the call cache and
subtrees reused across runs only make it cheaper.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel, ValidationError
from rich import box
from rich.console import Console
from rich.table import Table

from hch.errors import read_text
from hch.run.policy import Policy, components
from hch.study.question_set import Item
from hch.study.sweep import CONFIG_FILE, RunRecord, SweepConfig, SweepError, items_digest, load_runs, spent_in


class EstimateRow(BaseModel):
    """The estimate for one voting variant at one depth."""

    votes: int
    """Voting copies (1: the policy alone)."""
    depth: int
    """The n of HCH_n."""
    runs: int
    """Runs of this variant and depth not made yet."""
    basis: int
    """Finished runs of this variant and depth the figures per run come from (0: no estimate)."""
    calls_per_run: float | None
    """Mean policy calls per run (standalone), or None without a basis."""
    tokens_per_call: float | None
    """Mean tokens per call, or None without a basis."""
    cost_per_call: float | None
    """Mean US dollars per call at the model's price, or None without a basis."""
    calls: float | None
    """runs x calls_per_run."""
    tokens: float | None
    """calls x tokens_per_call."""
    cost: float | None
    """calls x cost_per_call."""
    budget: int | None = None
    """Budgeted HCH: the runs' call budget (a sweep over budget has a row per budget); None: not budgeted."""


def row(votes: int, depth: int, runs: int, basis: list[RunRecord]) -> EstimateRow:
    if not basis:
        return EstimateRow(votes=votes, depth=depth, runs=runs, basis=0, calls_per_run=None, tokens_per_call=None,
                           cost_per_call=None, calls=None, tokens=None, cost=None)
    calls = sum(r.calls for r in basis)
    per_run = calls / len(basis)
    per_call_tokens = sum(r.tokens for r in basis) / calls if calls else 0.0
    per_call_cost = sum(r.cost for r in basis) / calls if calls else 0.0
    expected = runs * per_run
    return EstimateRow(
        votes=votes, depth=depth, runs=runs, basis=len(basis), calls_per_run=per_run, tokens_per_call=per_call_tokens,
        cost_per_call=per_call_cost, calls=expected, tokens=expected * per_call_tokens, cost=expected * per_call_cost,
    )


def check_same_sweep(items: list[Item], config: SweepConfig, policies: dict[int, Policy], out: Path) -> None:
    """Refuse to estimate from an output directory that holds a different sweep."""
    path = out / CONFIG_FILE
    if not path.exists():
        return
    try:
        previous = SweepConfig.model_validate_json(read_text(path, "sweep configuration", SweepError))
    except (ValidationError, OSError) as exc:
        raise SweepError(f"{path} is not a sweep configuration ({type(exc).__name__}); use another --out") from None
    full = config.model_copy(update={
        "fingerprints": {str(k): p.fingerprint for k, p in policies.items()}, "items_digest": items_digest(items),
    })
    if not full.continues(previous):
        raise SweepError(f"{out} holds a different sweep (other questions, policy or limits): nothing to estimate from")


def estimate_rows(items: list[Item], config: SweepConfig, policies: dict[int, Policy], out: Path) -> list[EstimateRow]:
    """One row per (votes, depth) of the sweep: what its runs not yet made in `out` would spend."""
    check_same_sweep(items, config, policies, out)
    done = load_runs(out)
    fingerprints = {k: p.fingerprint for k, p in policies.items()}
    rows = []
    for votes in sorted(policies):
        for depth, budget in sorted(config.points(), key=lambda point: (point[0], point[1] or 0)):
            left = sum((votes, item.id, depth, budget) not in done for item in items)
            basis = [r for key, r in done.items() if key[0] == votes and key[2:] == (depth, budget)
                     and r.policy == fingerprints[votes]]
            rows.append(row(votes, depth, left, basis).model_copy(update={"budget": budget}))
    return rows


def model_prices(policies: dict[int, Policy]) -> list[str]:
    """`MODEL: $IN in, $OUT out` for each LLM in the policies (`no price` for one without)."""
    found: list[str] = []
    for policy in policies.values():
        for part in components(policy):
            model, price = getattr(part, "model", None), getattr(part, "price", ...)
            if model is None or price is ...:
                continue
            text = f"{model}: no price" if price is None else f"{model}: ${price.input:g} in, ${price.output:g} out"
            if text not in found:
                found.append(text)
    return found


def _number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _dollars(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def print_estimate(rows: list[EstimateRow], config: SweepConfig, policies: dict[int, Policy], out: Path,
                   pilot: int | None) -> None:
    """The estimate as a table on stdout, with its assumptions and the budget left."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)
    view = Table(title="estimate of the runs left", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    budgeted = any(r.budget is not None for r in rows)
    for name in ("votes", "budget" if budgeted else "n", "runs left", "basis", "calls/run", "tokens/call", "$/call",
                 "calls", "tokens", "cost"):
        view.add_column(name, justify="right", no_wrap=True)
    for r in rows:
        view.add_row(str(r.votes), str(r.budget if budgeted else r.depth), str(r.runs), str(r.basis),
                     _number(r.calls_per_run, 1), _number(r.tokens_per_call, 1), _dollars(r.cost_per_call),
                     _number(r.calls), _number(r.tokens), _dollars(r.cost))
    console.print(view)
    open_rows = [r for r in rows if r.runs and r.calls is None]
    known = [r for r in rows if r.calls is not None]
    total_calls = sum(r.calls or 0 for r in known)
    total_tokens = sum(r.tokens or 0 for r in known)
    total_cost = sum(r.cost or 0 for r in known)
    says = console.print
    says(f"total: {sum(r.runs for r in rows)} runs left · ~{total_calls:,.0f} calls · ~{total_tokens:,.0f} tokens · "
         f"~${total_cost:.4f}" + (f" (without the {len(open_rows)} rows that have no basis)" if open_rows else ""),
         markup=False)
    source = f"a pilot of the first {pilot} questions and " if pilot else ""
    axis = "budget" if budgeted else "depth"
    says(f"basis: {source}the finished runs of this sweep in {out} at the same {axis} and number of votes; "
         "calls, tokens and cost per run are those of a standalone run (empty caches), so this is an upper bound: "
         "the call cache and reused subtrees only make runs cheaper. $/call: the model's price as those calls paid "
         "it ($0 for a model without a price).", markup=False, style="dim")
    prices = model_prices(policies)
    if prices:
        says("prices (dollars per million tokens): " + "; ".join(prices), markup=False, style="dim")
    if open_rows:
        says("rows without a basis have no finished run yet: run a pilot with --pilot N", markup=False, style="dim")
    spent_tokens, spent_cost = spent_in(out)
    if config.max_cost is not None or config.max_total_tokens is not None:
        parts = []
        if config.max_cost is not None:
            parts.append(f"${max(config.max_cost - spent_cost, 0):.4f} of ${config.max_cost:.4f} left")
        if config.max_total_tokens is not None:
            left = max(config.max_total_tokens - spent_tokens, 0)
            parts.append(f"{left:,} of {config.max_total_tokens:,} tokens left")
        over = (config.max_cost is not None and total_cost > config.max_cost - spent_cost) or (
            config.max_total_tokens is not None and total_tokens > config.max_total_tokens - spent_tokens)
        verdict = "the estimate exceeds it: the sweep would stop when it is spent" if over else "the estimate fits"
        says(f"budget: {' · '.join(parts)}; {verdict}", markup=False)
    elif spent_tokens or spent_cost:
        says(f"spent so far in {out}: {spent_tokens:,} tokens · ${spent_cost:.4f}", markup=False)
    sys.stdout.flush()
