"""Re-running a recorded trace: from its recorded policy outputs, or with another policy.

`replay(trace)` answers the recorded question again with the recorded depth, context and
limits, every policy call served by `ReplayPolicy` (no network, deterministic), and
compares the new trace with the recording. With `policy=`, that policy acts instead from
the root (or from the workspace `from_node` down) and the report says where the run
departed from the recording.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from hch.errors import TraceError
from hch.limits import Limits
from hch.policies.replay import Divergence, ReplayPolicy
from hch.record.trace import Trace
from hch.review.diff import DiffReport, diff
from hch.run.engine import Copies, answer
from hch.run.facts import Facts, check_facts
from hch.run.policy import Policy


class ReplayReport(BaseModel):
    """The outcome of a replay."""

    reproduced: bool
    """True when the replay made the same calls and produced the same tree and answer."""
    answer: str
    """The replay's answer."""
    recorded_answer: str | None
    """The recording's answer."""
    served: int
    """Policy calls served from the recording."""
    unserved: int
    """Calls the recording could not serve (failed, or made by the fallback policy)."""
    fallback: bool = False
    """True when a fallback policy made the calls the recording could not serve."""
    divergence: Divergence | None
    """The first call the recording could not serve (plain replay only)."""
    diff: DiffReport
    """The comparison of the recording (a) with the replay (b)."""

    def text(self) -> str:
        """The outcome as a few lines for the terminal."""
        head = "reproduced" if self.reproduced else "diverged"
        lines = [f"{head}: answer {self.answer!r} (recorded {self.recorded_answer!r});"
                 f" {self.served} calls served from the recording, {self.unserved} not servable"]
        if self.diff.first is not None:
            lines.append("first difference: " + self.diff.first.line())
        if self.divergence is not None:
            lines.append("first call the recording could not serve: " + self.divergence.line())
        if not self.reproduced:
            lines += [line for line in self.diff.text().splitlines()[1:] if not line.startswith("first difference")]
        if self.unserved and not self.fallback:
            lines.append("calls the recording could not serve failed their nodes; --fallback POLICY acts for them")
        return "\n".join(lines)


async def replay(
    recorded: Trace, policy: Policy | None = None, from_node: int | None = None,
    meta: dict[str, Any] | None = None, fallback: Policy | None = None,
) -> tuple[ReplayReport, Trace]:
    """Replay `recorded`; with `policy`, let it act from `from_node` (default: the root).

    `fallback` acts for the calls the recording cannot serve (without it they fail the node).
    """
    if from_node is not None:
        if policy is None:
            raise TraceError("--from-node needs --policy: it says where another policy takes over")
        if from_node not in recorded.graph or recorded.graph.nodes[from_node]["kind"] != "workspace":
            raise TraceError(f"the trace has no workspace node {from_node}")
    info = recorded.meta
    try:
        limits = Limits.model_validate(info.get("limits") or {})
    except ValidationError as exc:
        raise TraceError(f"the trace's recorded limits are not valid here: {exc.errors()[0]['msg']}") from None
    root = recorded.graph.nodes[recorded.root]
    served_by = ReplayPolicy(recorded, override=policy, from_node=from_node, fallback=fallback)
    result = await answer(
        str(info.get("question", root["question"])), depth=int(info.get("depth", root["depth"])),
        policy=served_by, context=str(info.get("context", "")), limits=limits,
        meta={"replay_of": info.get("started_at"), **(meta or {})}, facts=_facts_of(info),
        copies=_copies(info.get("copies")), budget=_budget_of(info),
    )
    report = diff(recorded, result.trace)
    divergence = served_by.divergence
    return ReplayReport(
        reproduced=divergence is None and report.same and result.answer == info.get("answer", result.answer),
        answer=result.answer, recorded_answer=info.get("answer"), served=served_by.served,
        unserved=served_by.unserved, fallback=fallback is not None, divergence=divergence, diff=report,
    ), result.trace


def _budget_of(info: dict[str, Any]) -> int | None:
    """The call budget a trace was recorded with (budgeted HCH), or None."""
    budget = info.get("budget")
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise TraceError(f"the trace's recorded budget is not a number of calls: {budget!r}")
    return budget


def _facts_of(info: dict[str, Any]) -> Facts:
    """The facts mode a trace was recorded in (traces from before the mode existed: shown)."""
    try:
        return check_facts(str(info.get("facts", "shown")))
    except ValueError as exc:
        raise TraceError(f"the trace's recorded facts mode is not valid: {exc}") from None
def _copies(recorded: Any) -> Copies:
    """The recorded copies mode (traces from before it was recorded merged their copies)."""
    if recorded in (None, "merged"):
        return "merged"
    if recorded == "independent":
        return "independent"
    raise TraceError(f"the trace's recorded copies mode {recorded!r} is not 'merged' or 'independent'")
