"""hch: Humans Consulting HCH, simulated. Answer a question by recursive delegation.

The names below are imported when first used (`hch.answer`, `from hch import load_trace`), so that
`import hch` — which every `hch.*` module and the `hch` command start with — costs almost nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # type checkers see the names as if imported here
    from hch.errors import HchError, NodeFailed, PolicyError, PolicySpecError, QuestionError, TraceError
    from hch.experts import ExpertPolicy
    from hch.limits import Limits
    from hch.policies.spec import make_policy
    from hch.record.format import load as load_trace
    from hch.record.format import save as save_trace
    from hch.record.summary import Summary
    from hch.record.trace import Trace
    from hch.run.call_cache import CallCache
    from hch.run.engine import Result, answer, answer_sync
    from hch.run.policy import Policy
    from hch.run.subtree_cache import SubtreeCache
    from hch.workspace import Action, Answer, Ask, Expand, Expansion, Reply, SubAnswer, Usage, Workspace

_EXPORTS: dict[str, tuple[str, str]] = {
    **{name: ("hch.errors", name) for name in
       ("HchError", "NodeFailed", "PolicyError", "PolicySpecError", "QuestionError", "TraceError")},
    "ExpertPolicy": ("hch.experts", "ExpertPolicy"),
    "Limits": ("hch.limits", "Limits"),
    "make_policy": ("hch.policies.spec", "make_policy"),
    "load_trace": ("hch.record.format", "load"),
    "save_trace": ("hch.record.format", "save"),
    "Summary": ("hch.record.summary", "Summary"),
    "Trace": ("hch.record.trace", "Trace"),
    "CallCache": ("hch.run.call_cache", "CallCache"),
    **{name: ("hch.run.engine", name) for name in ("Result", "answer", "answer_sync")},
    "Policy": ("hch.run.policy", "Policy"),
    "SubtreeCache": ("hch.run.subtree_cache", "SubtreeCache"),
    **{name: ("hch.workspace", name) for name in
       ("Action", "Answer", "Ask", "Expand", "Expansion", "Reply", "SubAnswer", "Usage", "Workspace")},
}
"""Each public name: the module that defines it, and its name there."""

__all__ = [
    "Action", "Answer", "Ask", "CallCache", "Expand", "Expansion", "ExpertPolicy", "HchError", "Limits", "NodeFailed",
    "Policy", "PolicyError", "PolicySpecError", "QuestionError", "Reply", "Result", "SubAnswer",
    "SubtreeCache", "Summary", "Trace", "TraceError", "Usage", "Workspace", "__version__",
    "answer", "answer_sync", "load_trace", "make_policy", "save_trace",
]


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use (then kept here)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hch' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
