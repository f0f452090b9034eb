"""The exceptions hch raises on purpose; each carries a one-line message for the user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from hch.workspace import Usage


class HchError(Exception):
    """Base class: a failure the CLI reports as one line and a non-zero exit."""


class QuestionError(HchError):
    """A policy cannot take this question at all (e.g. the expert cannot parse it)."""


class PolicyError(HchError):
    """A policy failed to produce a valid action for a workspace.

    A policy that spent something before failing (tokens, retried requests) passes it along,
    so the engine records it on the failed call and counts it against the run's budgets.
    """

    def __init__(
        self, message: str, *, usage: Usage | None = None, raw: dict[str, Any] | None = None,
        attempts: list[dict[str, Any]] | None = None, invocations: int = 1,
    ) -> None:
        super().__init__(message)
        self.usage = usage
        self.raw = raw
        self.attempts = attempts or []
        self.invocations = invocations
        """Base-policy invocations the failed call made (a vote whose every copy failed: k)."""


class RunAborted(PolicyError):
    """A policy cannot work at all (e.g. the server rejects the API key or knows no such model):
    rather than fail every node alike, the engine stops the whole run."""


class Stopped(RunAborted):
    """The person acting as H ended the run at the prompt (Ctrl-D); what completed is kept."""


class PolicySpecError(HchError):
    """A `--policy` spec names no known policy or is malformed."""


class TraceError(HchError):
    """A trace file is missing, corrupt, foreign or of an unknown schema version."""


def read_text(path: Path, what: str, error: type[HchError]) -> str:
    """A user-named file's text; a missing, unreadable, special (FIFO, device), oversized or
    non-UTF-8 file is one `error` line naming `what` (see `hch.files`)."""
    from hch.files import read_text as read

    return read(path, what, error)


class NodeFailed(HchError):
    """A node ended in error while the run was asked to fail fast."""
