"""A spend budget shared by several runs (a sweep's): once spent, no run starts another call.

A run's own `Limits.max_total_tokens` / `max_cost` bound that run alone; a `SharedBudget` given to
`hch.run.engine.answer` bounds everything spent by every run it is given to, as they go. Calls already
in flight when it runs out finish (they cannot be taken back), so the spend can pass the budget by at
most what those calls cost.
"""

from __future__ import annotations

from hch.run.policy import components
from hch.workspace import Usage


class SharedBudget:
    """Tokens and dollars that several runs may spend together, and what they have spent so far."""

    def __init__(
        self, max_total_tokens: int | None = None, max_cost: float | None = None, tokens: int = 0, cost: float = 0.0
    ) -> None:
        if max_total_tokens is not None and max_total_tokens < 0:
            raise ValueError(f"max_total_tokens must be 0 or more, not {max_total_tokens}")
        if max_cost is not None and max_cost < 0:
            raise ValueError(f"max_cost must be 0 or more, not {max_cost}")
        self.max_total_tokens = max_total_tokens
        self.max_cost = max_cost
        self.tokens = tokens
        """Tokens spent so far (prompt and completion)."""
        self.cost = cost
        """US dollars spent so far."""

    def add(self, usage: Usage) -> None:
        """Count what a call spent."""
        self.tokens += usage.total_tokens
        self.cost += usage.cost

    def exhausted(self) -> tuple[str, str] | None:
        """(why, which limit) once the budget is spent, else None. The limits are named `sweep_max_total_tokens`
        and `sweep_max_cost`, so a node refused by a shared budget tells so in its trace."""
        if self.max_total_tokens is not None and self.tokens >= self.max_total_tokens:
            why = f"the sweep's token budget is spent (max_total_tokens={self.max_total_tokens})"
            return why, "sweep_max_total_tokens"
        if self.max_cost is not None and self.cost >= self.max_cost:
            return f"the sweep's cost budget is spent (max_cost={self.max_cost})", "sweep_max_cost"
        return None

    def __repr__(self) -> str:
        return (
            f"SharedBudget(max_total_tokens={self.max_total_tokens}, max_cost={self.max_cost}, "
            f"tokens={self.tokens}, cost={self.cost:.6f})"
        )


def unpriced_models(policy: object) -> list[str]:
    """The models of the LLM policies inside `policy` (votes and positional parts included) that have no
    price, so their cost counts as $0."""
    found: list[str] = []
    for part in components(policy):
        model, price = getattr(part, "model", None), getattr(part, "price", ...)
        if model is not None and price is None and str(model) not in found:
            found.append(str(model))
    return found
