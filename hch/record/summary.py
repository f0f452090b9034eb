"""Headline figures of a run, computed from its trace."""

from __future__ import annotations

from typing import Any

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
    """Count what the trace holds (one pass over its nodes and one over its edges); for a streamed
    trace (`Trace.stream`), what it counted as records left it plus what it still holds."""
    tally = trace.tally.copy() if isinstance(trace.tally, Tally) else Tally()
    grafted: set[int] = set()
    for node, data in trace.nodes.items():
        if data.get("grafted"):
            grafted.add(node)
        if data["kind"] == "workspace":
            tally.workspace(data)
        elif data["kind"] == "call":
            tally.call(data)
    for source, _, edge in trace.edges():
        tally.edge(edge, grafted=source in grafted)
    return tally.summary(wall_time)


class Tally:
    """The summary's counts, fed one record at a time (`summarize`, and a streamed trace as it goes)."""

    def __init__(self) -> None:
        self.workspaces = self.own = self.made = self.calls = self.invocations = self.unverified = 0
        self.cycles = self.guesses = self.errors = self.tokens = self.oracle = self.reuses = self.repeats = 0
        self.cost = self.last_end = 0.0
        self.lowest: int | None = None
        self.highest: int | None = None
        self.limits: set[str] = set()

    def copy(self) -> Tally:
        twin = Tally()
        twin.__dict__.update(self.__dict__)
        twin.limits = set(self.limits)
        return twin

    def workspace(self, data: dict[str, Any]) -> None:
        """Count a workspace as it ended."""
        # Nodes marked `grafted` were copied from another run's trace (a shared subtree cache): their
        # calls were made, and paid for, there; here they count only as the one reuse that brought them.
        grafted = data.get("grafted")
        self.workspaces += 1
        self.own += not grafted
        self.oracle += bool(data.get("oracle")) and not grafted
        self.cycles += data["cycle_of"] is not None
        status = data["status"]
        self.guesses += status == "guess"
        self.errors += status == "error"
        depth = data["depth"]
        self.lowest = depth if self.lowest is None or depth < self.lowest else self.lowest
        self.highest = depth if self.highest is None or depth > self.highest else self.highest
        if data["ended"] is not None and data["ended"] > self.last_end:
            self.last_end = data["ended"]
        if data["limit"]:
            self.limits.add(data["limit"])

    def call(self, data: dict[str, Any]) -> None:
        """Count a policy call."""
        if data.get("grafted"):
            return
        self.calls += 1
        self.unverified += _unverified(data.get("raw"))
        if not data["cached"]:
            self.made += 1
            self.invocations += data.get("invocations", 1)
            usage = data["usage"]
            self.tokens += usage["prompt_tokens"] + usage["completion_tokens"]
            self.cost += usage["cost"]

    def edge(self, data: dict[str, Any], grafted: bool = False) -> None:
        """Count an edge as recorded (with its repeats so far); `grafted`: its source was copied."""
        if not grafted:
            self.reuses += data["kind"] == "reuse"
            self.repeats += data.get("repeats", 0)

    def repeat(self) -> None:
        """Count one more repeat of an edge already counted."""
        self.repeats += 1

    def summary(self, wall_time: float | None = None) -> Summary:
        whole_run_reused = int(bool(self.workspaces) and not self.own)  # the root itself came from another run
        return Summary(
            nodes=self.own,
            policy_calls=self.made,
            call_cache_hits=self.calls - self.made,
            invocations=self.invocations,
            unverified=self.unverified,
            subtree_cache_hits=self.reuses + self.repeats + whole_run_reused,
            cycles=self.cycles,
            guesses=self.guesses,
            errors=self.errors,
            levels=self.highest - self.lowest if self.highest is not None and self.lowest is not None else 0,
            tokens=self.tokens,
            cost=self.cost,
            wall_time=wall_time if wall_time is not None else self.last_end,
            limits_hit=sorted(self.limits),
            environment_answers=self.oracle,
        )


def _unverified(raw: object) -> bool:
    """Whether a call's record says a check left its answer unconfirmed."""
    if not isinstance(raw, dict):
        return False
    record = raw.get("check")
    return isinstance(record, dict) and record.get("verified") is False
