"""The limits a run enforces, recorded in every trace."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Limits(BaseModel):
    """Bounds on one run. Hitting one is recorded on the node where it happened."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    max_asks_per_step: int = Field(default=8, ge=1)
    """Subquestions one step may ask; a larger ask is refused back to the policy."""
    max_steps_per_node: int = Field(default=8, ge=1)
    """Steps of asking one node may take before it must answer."""
    max_nodes: int = Field(default=100_000, ge=1)
    """Workspaces a run may expand (cache hits are free)."""
    max_refusals: int = Field(default=3, ge=0)
    """Refused actions a node may receive before it ends in error."""
    node_timeout: float | None = Field(default=None, gt=0)
    """Seconds one policy call may take (the time H spends acting at a node, not its subtree)."""
    run_timeout: float | None = Field(default=None, gt=0)
    """Seconds the whole run may take."""
    max_total_tokens: int | None = Field(default=None, ge=0)
    """Tokens the run may spend; once reached, no further policy call is made."""
    max_cost: float | None = Field(default=None, ge=0)
    """US dollars the run may spend; once reached, no further policy call is made."""
    pointers: bool = Field(default=False, exclude_if=lambda value: not value)
    """Pointer mode (`hch.run.pointers`): messages, `$N` pointers and the `expand` action. Left out of
    dumps when off, so other runs' traces are unchanged."""
    bandwidth: int | None = Field(default=None, ge=1, exclude_if=lambda value: value is None)
    """Characters H may see in one workspace (question, context, sub-answers, expansions); an expansion
    past it is refused. Setting it turns pointer mode on. None: no bandwidth limit."""

    @model_validator(mode="after")
    def _bandwidth_needs_pointers(self) -> Limits:
        if self.bandwidth is not None and not self.pointers:
            object.__setattr__(self, "pointers", True)
        return self
