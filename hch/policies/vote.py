"""`vote(k, inner)`: k independent copies of a policy act on each workspace; the majority wins.

Voting happens per policy call: every node's every action is the majority of k copies'
actions. For an expert the copies agree on how to decompose and differ only in the look-ups
they get wrong, so each primitive answer is repaired by its own vote before it can spread
up the tree. A copy is `inner.replica(i)` when the policy offers independent copies (e.g.
the noisy expert's own seed per copy), otherwise `inner` itself (a sampling policy such as
an LLM at temperature > 0 is independent call by call; a deterministic one makes voting moot).
Ties go to the tied action of the lowest-numbered copy and are recorded in `Reply.raw`.

`panel([p1, p2, ...])` (spec `vote(SPEC, SPEC, ...)`) is a vote over different policies, one
copy each (copy i is `replica(p_i, i)`, so two identical members are still independent copies);
the same majority and tie rule apply, in the order the members are given. A vote's
`Reply.invocations` is the sum of its copies' invocations (nested votes multiply) plus the
copies that failed, so a vote of k counts as k policy invocations. A failing copy abstains,
but one that aborts the run (`RunAborted`: a dead server, a person quitting) stops the other
copies and the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import anyio

from hch.errors import PolicyError, PolicySpecError, RunAborted
from hch.policies.callable import PolicyFunction
from hch.run.policy import ChecksQuestions, Policy, Positional, as_reply, resolve
from hch.workspace import Action, Answer, Expand, Reply, Usage, Workspace, normalize_question


def replica(policy: Policy, index: int) -> Policy:
    """Copy `index` of a policy, independent of the others where the policy can make one."""
    make = getattr(policy, "replica", None)
    return make(index) if callable(make) else policy


def ballot(action: Action) -> str:
    """What two actions must share to count as the same vote."""
    if isinstance(action, Answer):
        return "answer: " + " ".join(action.answer.split()).casefold()
    if isinstance(action, Expand):
        return "expand: " + action.pointer.strip()
    return "ask: " + " | ".join(normalize_question(q) for q in action.questions)


class _Ballot:
    """The majority of `self.copies`' actions, per policy call."""

    k: int
    copies: list[Policy]

    @property
    def depth_stable(self) -> bool:
        return all(getattr(copy, "depth_stable", False) is True for copy in self.copies)

    @property
    def sees_facts(self) -> bool:
        """Shown the facts with facts hidden only if every copy is (all copies see one workspace)."""
        return all(getattr(copy, "sees_facts", False) is True for copy in self.copies)

    async def act(self, workspace: Workspace) -> Reply:
        replies: list[Reply | None] = [None] * self.k
        failures: dict[int, str] = {}
        aborted: list[RunAborted] = []

        async def one(index: int) -> None:
            try:
                replies[index] = as_reply(await self.copies[index].act(workspace))
            except RunAborted as exc:  # the policy cannot work at all (a dead server, a person quitting)
                aborted.append(exc)
                group.cancel_scope.cancel()  # the other copies stop too: the whole run stops
            except Exception as exc:  # one failing copy abstains; the others still vote
                failures[index] = f"{type(exc).__name__}: {exc}"

        async with anyio.create_task_group() as group:
            for index in range(self.k):
                group.start_soon(one, index)
        if aborted:
            raise aborted[0]
        cast = [(i, r) for i, r in enumerate(replies) if r is not None]
        if not cast:
            raise PolicyError(f"all {self.k} voting copies failed; first: {failures[min(failures)]}",
                              invocations=self.k)  # a vote of k is k invocations, failed ones included
        return tally(self.k, cast, failures)


class VotePolicy(_Ballot):
    """Majority of `k` copies of `inner`, per policy call."""

    def __init__(self, k: int, inner: Policy) -> None:
        if k < 1:
            raise ValueError(f"a vote needs at least 1 copy, not {k}")
        check_votes(k)
        self.k, self.inner = k, inner
        self.copies = [replica(inner, i) for i in range(k)]

    @property
    def fingerprint(self) -> str:
        return f"vote({self.k},{self.inner.fingerprint})"

    def replica(self, index: int) -> VotePolicy:
        """An independent copy of the whole vote (for a vote nested in another, or in a check)."""
        return VotePolicy(self.k, replica(self.inner, index))

    def check(self, question: str, context: str) -> None:
        if isinstance(self.inner, ChecksQuestions):
            self.inner.check(question, context)


class PanelVote(_Ballot):
    """Majority of different policies, one copy each, per policy call."""

    def __init__(self, members: Sequence[Policy]) -> None:
        if len(members) < 2:
            raise ValueError(f"a vote over policies needs at least 2 of them, not {len(members)}")
        self.members = list(members)
        self.k = len(self.members)
        self.copies = [replica(member, i) for i, member in enumerate(self.members)]

    @property
    def fingerprint(self) -> str:
        return "vote(" + ",".join(member.fingerprint for member in self.members) + ")"

    def replica(self, index: int) -> PanelVote:
        """An independent copy of the whole panel."""
        return PanelVote([replica(member, index) for member in self.members])

    def check(self, question: str, context: str) -> None:
        """Refuse a question only when every member would (the others abstain at it)."""
        checking = [m for m in self.members if isinstance(m, ChecksQuestions)]
        if len(checking) < len(self.members):
            return
        first: Exception | None = None
        for member in checking:
            try:
                member.check(question, context)
                return
            except Exception as exc:
                first = first or exc
        assert first is not None
        raise first


def tally(k: int, cast: list[tuple[int, Reply]], failures: dict[int, str]) -> Reply:
    """The winning reply, with the whole count in `raw["vote"]`."""
    counts = Counter(ballot(reply.action) for _, reply in cast)
    top = max(counts.values())
    tied = [label for label, n in counts.items() if n == top]
    winner_index, winner = next((i, r) for i, r in cast if ballot(r.action) in tied)
    usage = sum((reply.usage for _, reply in cast), Usage())
    record: dict[str, Any] = {
        "k": k, "counts": dict(counts), "winner": ballot(winner.action), "winner_copy": winner_index,
        "tie": len(tied) > 1, "tied": tied if len(tied) > 1 else [],
        "copies": [{"copy": i, "action": r.action.model_dump(), "raw": r.raw} for i, r in cast],
        "failed": {str(i): message for i, message in failures.items()},
    }
    attempts = [{**attempt, "copy": i} for i, reply in cast for attempt in reply.attempts]
    invocations = sum(reply.invocations for _, reply in cast) + len(failures)
    return Reply(action=winner.action, usage=usage, raw={"vote": record}, attempts=attempts, invocations=invocations)


class PositionalVote:
    """A vote over a positional policy: the vote is taken among copies of the part acting at a node."""

    def __init__(self, k: int, inner: Policy) -> None:
        self.k, self.inner = k, inner

    @property
    def fingerprint(self) -> str:
        return f"vote({self.k},{self.inner.fingerprint})"

    def at(self, depth: int, root: bool) -> Policy:
        assert isinstance(self.inner, Positional)
        return vote(self.k, self.inner.at(depth, root))

    async def act(self, workspace: Workspace) -> Reply:
        raise PolicyError("a positional vote acts through the part chosen for each node")


class PositionalPanel:
    """A vote over policies some of which pick their part by position: resolved per node."""

    def __init__(self, members: Sequence[Policy]) -> None:
        self.members = list(members)

    @property
    def fingerprint(self) -> str:
        return "vote(" + ",".join(member.fingerprint for member in self.members) + ")"

    def at(self, depth: int, root: bool) -> Policy:
        return PanelVote([resolve(member, depth, root) for member in self.members])

    async def act(self, workspace: Workspace) -> Reply:
        raise PolicyError("a positional vote acts through the part chosen for each node")


MAX_VOTES = 1000
"""Copies one vote may hold at most (each copy is an object made up front, and k calls per action)."""


def check_votes(k: int) -> None:
    """Refuse a number of copies no vote could use, before any copy is made."""
    if k > MAX_VOTES:
        raise PolicySpecError(f"a vote of {k} copies is too large: at most {MAX_VOTES} copies per vote")


def vote(k: int, inner: Policy | str | PolicyFunction) -> Policy:
    """`VotePolicy`, or `PositionalVote` when `inner` picks its part by position; k = 1 is `inner`.
    `inner` may be a spec string or a function of the workspace, as for `hch.answer(policy=...)`."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"a vote needs a whole number of copies, at least 1, not {k!r}")
    check_votes(k)
    policy = as_policy(inner)
    if isinstance(policy, Positional):
        return PositionalVote(k, policy)
    return policy if k == 1 else VotePolicy(k, policy)


def panel(members: Sequence[Policy | str | PolicyFunction]) -> Policy:
    """`PanelVote` over different policies (`PositionalPanel` if any picks its part by position);
    a single member is that member. Members may be spec strings or functions, as for `vote`."""
    if isinstance(members, str) or not isinstance(members, Sequence) or not members:
        raise ValueError(f"a vote over policies needs a non-empty list of them, not {members!r}")
    policies = [as_policy(member) for member in members]
    if len(policies) == 1:
        return policies[0]
    if any(isinstance(member, Positional) for member in policies):
        return PositionalPanel(policies)
    return PanelVote(policies)


def as_policy(value: object) -> Policy:
    """`hch.policies.spec.as_policy`, imported when used (the spec module builds votes)."""
    from hch.policies.spec import as_policy as coerce

    return coerce(value)
