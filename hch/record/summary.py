"""Headline figures of a run, computed from its trace."""

from __future__ import annotations

from pydantic import BaseModel

from hch.record.trace import Trace


class Summary(BaseModel):
    """The one-line summary `hch ask` prints, also stored in the trace's metadata."""

    nodes: int
    """Workspaces expanded (cache reuses not counted)."""
    policy_calls: int
    """Policy calls actually made (not served from the call cache)."""
    call_cache_hits: int
    """Policy calls served from the persistent call cache."""
    invocations: int = 0
    """Base-policy invocations behind the calls made: a vote of k copies counts k, a check its policy's
    and its verifier's (0 in summaries written before it was counted)."""
    unverified: int = 0
    """Answers a `check(...)` policy returned unconfirmed by its verifier (calls in this run's tree)."""
    subtree_cache_hits: int
    """Subquestions answered by reusing an already expanded subtree."""
    cycles: int
    """Nodes whose question repeats one of their ancestors'."""
    guesses: int
    """Nodes answered as a guess."""
    errors: int
    """Nodes that ended in error."""
    levels: int
    """How many levels below the root were used (0: the root answered alone)."""
    tokens: int
    """Tokens spent by the calls made (cache hits cost nothing)."""
    cost: float
    """US dollars spent by the calls made."""
    wall_time: float
    """Seconds from the start of the run to its end."""
    limits_hit: list[str]
    """Names of the limits hit anywhere in the run."""
    environment_answers: int = 0
    """Nodes the task's environment answered from the facts (facts hidden), without a policy call."""

    def line(self) -> str:
        """The figures as one human-readable line."""
        parts = [
            count(self.nodes, "node") + (f" ({self.environment_answers} by the environment)"
                                         if self.environment_answers else ""),
            count(self.policy_calls, "policy call")
            + (f" ({count(self.invocations, 'invocation')})" if self.invocations != self.policy_calls else ""),
            count(self.call_cache_hits + self.subtree_cache_hits, "cache hit"),
            f"deepest level {self.levels}",
            f"{self.wall_time:.2f}s",
        ]
        if self.tokens:
            parts.append(f"{count(self.tokens, 'token')}, ${self.cost:.4f}")
        if self.guesses or self.errors:
            parts.append(f"{count(self.guesses, 'guess', 'guesses')}, {count(self.errors, 'error')}")
        if self.unverified:
            parts.append(f"{self.unverified} unverified")
        if self.limits_hit:
            parts.append("limits hit: " + ", ".join(self.limits_hit))
        return " · ".join(parts)


def count(number: int, one: str, many: str | None = None) -> str:
    """`1 node`, `2 nodes`."""
    return f"{number} {one if number == 1 else many or one + 's'}"


def summarize(trace: Trace, wall_time: float | None = None) -> Summary:
    """Count what the trace holds."""
    workspaces = [data for _, data in trace.workspaces()]
    # Nodes marked `grafted` were copied from another run's trace (a shared subtree cache): their
    # calls were made, and paid for, there; here they count only as the one reuse that brought them.
    own = [data for data in workspaces if not data.get("grafted")]
    calls = [data for _, data in trace.calls() if not data.get("grafted")]
    made = [c for c in calls if not c["cached"]]
    grafted = {node for node, data in trace.graph.nodes(data="grafted") if data}  # one pass, not one per edge
    edges = [d for s, _, d in trace.graph.edges(data=True) if s not in grafted]
    reuses = [d for d in edges if d["kind"] == "reuse"]
    repeats = sum(d.get("repeats", 0) for d in edges)
    whole_run_reused = int(bool(workspaces) and not own)  # the root itself came from another run
    depths = [w["depth"] for w in workspaces]
    ends = [w["ended"] for w in workspaces if w["ended"] is not None]
    return Summary(
        nodes=len(own),
        policy_calls=len(made),
        call_cache_hits=len(calls) - len(made),
        invocations=sum(c.get("invocations", 1) for c in made),
        unverified=sum(_unverified(c.get("raw")) for c in calls),
        subtree_cache_hits=len(reuses) + repeats + whole_run_reused,
        cycles=sum(w["cycle_of"] is not None for w in workspaces),
        guesses=sum(w["status"] == "guess" for w in workspaces),
        errors=sum(w["status"] == "error" for w in workspaces),
        levels=max(depths) - min(depths) if depths else 0,
        tokens=sum(c["usage"]["prompt_tokens"] + c["usage"]["completion_tokens"] for c in made),
        cost=sum(c["usage"]["cost"] for c in made),
        wall_time=wall_time if wall_time is not None else max(ends, default=0.0),
        limits_hit=sorted({w["limit"] for w in workspaces if w["limit"]}),
        environment_answers=sum(bool(w.get("oracle")) for w in own),
    )


def _unverified(raw: object) -> bool:
    """Whether a call's record says a check left its answer unconfirmed."""
    if not isinstance(raw, dict):
        return False
    record = raw.get("check")
    return isinstance(record, dict) and record.get("verified") is False
