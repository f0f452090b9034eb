"""`check(P, VERIFIER)`: P acts; a verifier confirms each of P's answers by acting on the same workspace.

For every policy call, P acts first. An ask, and an answer P marks as a guess, pass through
unchecked (a decomposition has no answer to confirm yet, and a guess is already marked as not
worked out). For any other answer, the verifier acts on the very same workspace (another
method: a second expert, a differently seeded copy, an LLM with a checking preset): if its
action is an answer with the same ballot as P's (`hch.policies.vote.ballot`: the same text up to
case and spacing), the answer stands, verified. If not, P is asked again, with the workspace's
`refusal` saying that its answer was not confirmed, at most `retries` times (default 1); each new
answer is checked again. An answer still unconfirmed after the last retry is returned as it is,
marked `verified: false` in `Reply.raw["check"]` (and counted in the run's summary); so is
a retry at which P asks or guesses instead (its action is carried out as it is).

The reply counts every invocation made: P's and the verifier's, over all rounds (a nested vote
counts its copies), and sums their usage. A verifier that fails or asks instead of answering
does not confirm; one that aborts the run (`RunAborted`: a dead server, a person quitting) stops it.
"""

from __future__ import annotations

from typing import Any

from hch.errors import PolicyError, RunAborted
from hch.policies.callable import PolicyFunction
from hch.policies.vote import as_policy, ballot, replica
from hch.run.policy import ChecksQuestions, Policy, Positional, as_reply, resolve
from hch.workspace import Answer, Reply, Usage, Workspace

DEFAULT_RETRIES = 1
NOT_CONFIRMED = "your answer {answer!r} was not confirmed by a check; work it out again and answer"
"""The refusal P sees on a retry (with the round number when there are several)."""


def is_recheck(refusal: str | None) -> bool:
    """Whether a refusal is a check's "not confirmed" (redo the work), not a refused ask."""
    return refusal is not None and refusal.startswith("your answer ") and "was not confirmed by a check" in refusal


def redo(workspace: Workspace) -> Workspace:
    """The workspace an expert works from on a check's retry: the same, without the refusal (a built-in
    expert reads any refusal as "you may not ask" and would guess; a retry asks it to work it out again)."""
    return workspace.model_copy(update={"refusal": None}) if is_recheck(workspace.refusal) else workspace


class CheckPolicy:
    """P's answers, each confirmed by a verifier; unconfirmed ones retried, then marked unverified."""

    def __init__(self, policy: Policy, verifier: Policy, retries: int = DEFAULT_RETRIES) -> None:
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, not {retries}")
        self.policy, self.verifier, self.retries = policy, verifier, retries

    @property
    def fingerprint(self) -> str:
        return f"check({self.policy.fingerprint},{self.verifier.fingerprint},retries={self.retries})"

    @property
    def depth_stable(self) -> bool:
        return all(getattr(p, "depth_stable", False) is True for p in (self.policy, self.verifier))

    def replica(self, index: int) -> CheckPolicy:
        """An independent copy (e.g. in a vote): copies of P and of the verifier."""
        return CheckPolicy(replica(self.policy, index), replica(self.verifier, index), self.retries)

    def check(self, question: str, context: str) -> None:
        if isinstance(self.policy, ChecksQuestions):
            self.policy.check(question, context)

    async def act(self, workspace: Workspace) -> Reply:
        rounds: list[dict[str, Any]] = []
        usage, invocations, attempts = Usage(), 0, list[dict[str, Any]]()
        asked = workspace
        for round_number in range(self.retries + 1):
            reply = as_reply(await self.policy.act(asked))
            usage, invocations = usage + reply.usage, invocations + reply.invocations
            attempts += [{**attempt, "check": f"policy {round_number}"} for attempt in reply.attempts]
            action = reply.action
            if not isinstance(action, Answer) or action.guess:
                if not rounds:
                    return reply  # an ask or a guess passes through unchecked
                return _done(reply, rounds, round_number, usage, invocations, attempts, verified=False)
            verdict = await self._verify(workspace, action)
            usage, invocations = usage + verdict.usage, invocations + verdict.invocations
            attempts += [{**attempt, "check": f"verifier {round_number}"} for attempt in verdict.attempts]
            agreed = verdict.agreed(action)
            rounds.append({"answer": action.answer, "raw": reply.raw, **verdict.record(), "agreed": agreed})
            if agreed:
                return _done(reply, rounds, round_number, usage, invocations, attempts, verified=True)
            refusal = NOT_CONFIRMED.format(answer=action.answer)
            if self.retries > 1:
                refusal += f" (retry {round_number + 1} of {self.retries})"
            asked = workspace.model_copy(update={"refusal": refusal})
        return _done(reply, rounds, self.retries, usage, invocations, attempts, verified=False)

    async def _verify(self, workspace: Workspace, answer: Answer) -> _Verdict:
        try:
            return _Verdict(as_reply(await self.verifier.act(workspace)), None)
        except RunAborted:
            raise  # the verifier cannot work at all (a dead server, a person quitting): the run stops
        except Exception as exc:  # a failing verifier confirms nothing; P's answer still stands
            failed = exc if isinstance(exc, PolicyError) else None
            usage = failed.usage if failed is not None and failed.usage is not None else Usage()
            return _Verdict(None, f"{type(exc).__name__}: {exc}", usage)


class _Verdict:
    """What the verifier did with one answer."""

    def __init__(self, reply: Reply | None, error: str | None, usage: Usage | None = None) -> None:
        self.reply, self.error = reply, error
        self.usage = reply.usage if reply is not None else (usage or Usage())
        self.invocations = reply.invocations if reply is not None else 1
        self.attempts = reply.attempts if reply is not None else []

    def agreed(self, answer: Answer) -> bool:
        return self.reply is not None and isinstance(self.reply.action, Answer) and (
            ballot(self.reply.action) == ballot(answer)
        )

    def record(self) -> dict[str, Any]:
        if self.reply is None:
            return {"verifier": None, "verifier_error": self.error}
        return {"verifier": self.reply.action.model_dump(), "verifier_raw": self.reply.raw}


def _done(
    reply: Reply, rounds: list[dict[str, Any]], retries: int, usage: Usage, invocations: int,
    attempts: list[dict[str, Any]], verified: bool,
) -> Reply:
    """P's last action with the whole check recorded: `raw["check"]` = verified, retries, rounds."""
    record = {"verified": verified, "retries": retries, "rounds": rounds}
    return Reply(action=reply.action, usage=usage, raw={"check": record}, attempts=attempts, invocations=invocations)


class PositionalCheck:
    """`check` where P or the verifier picks its part by position: resolved per node."""

    def __init__(self, policy: Policy, verifier: Policy, retries: int = DEFAULT_RETRIES) -> None:
        self.policy, self.verifier, self.retries = policy, verifier, retries

    @property
    def fingerprint(self) -> str:
        return f"check({self.policy.fingerprint},{self.verifier.fingerprint},retries={self.retries})"

    def at(self, depth: int, root: bool) -> Policy:
        return CheckPolicy(resolve(self.policy, depth, root), resolve(self.verifier, depth, root), self.retries)

    async def act(self, workspace: Workspace) -> Reply:
        raise PolicyError("a positional check acts through the parts chosen for each node")


def check(
    policy: Policy | str | PolicyFunction, verifier: Policy | str | PolicyFunction, retries: int = DEFAULT_RETRIES
) -> Policy:
    """`CheckPolicy`, or `PositionalCheck` when either part picks its part by position. Either may be
    a spec string or a function of the workspace, as for `hch.answer(policy=...)`."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number, 0 or more, not {retries!r}")
    acting, checking = as_policy(policy), as_policy(verifier)
    if isinstance(acting, Positional) or isinstance(checking, Positional):
        return PositionalCheck(acting, checking, retries)
    return CheckPolicy(acting, checking, retries)
