"""hch: Humans Consulting HCH, simulated. Answer a question by recursive delegation."""

from __future__ import annotations

__version__ = "0.1.0"

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

__all__ = [
    "Action", "Answer", "Ask", "CallCache", "Expand", "Expansion", "ExpertPolicy", "HchError", "Limits", "NodeFailed",
    "Policy", "PolicyError", "PolicySpecError", "QuestionError", "Reply", "Result", "SubAnswer",
    "SubtreeCache", "Summary", "Trace", "TraceError", "Usage", "Workspace", "__version__",
    "answer", "answer_sync", "load_trace", "make_policy", "save_trace",
]
