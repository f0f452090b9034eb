"""The exceptions hch raises on purpose; each carries a one-line message for the user."""

from __future__ import annotations


class HchError(Exception):
    """Base class: a failure the CLI reports as one line and a non-zero exit."""


class QuestionError(HchError):
    """A policy cannot take this question at all (e.g. the expert cannot parse it)."""


class PolicyError(HchError):
    """A policy failed to produce a valid action for a workspace."""


class PolicySpecError(HchError):
    """A `--policy` spec names no known policy or is malformed."""


class TraceError(HchError):
    """A trace file is missing, corrupt, foreign or of an unknown schema version."""


class NodeFailed(HchError):
    """A node ended in error while the run was asked to fail fast."""
