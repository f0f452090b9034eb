"""Built-in experts: hand-written H's for algorithmic questions, the offline default policy.

An expert knows some question forms. It answers primitive questions directly, decomposes
the rest into subquestions, and at depth 0 gives a guess, marked as one. Adding a task is
adding an `Expert` (a module here) to `EXPERTS`; the engine does not change.
"""

from __future__ import annotations

from collections.abc import Sequence

from hch.errors import PolicyError, QuestionError
from hch.experts.arithmetic import ExpressionExpert, ListExpert
from hch.experts.base import Expert
from hch.experts.permutation_powering import PermutationExpert
from hch.experts.sequential_assignments import SequentialAssignmentsExpert
from hch.experts.shortest_path import ShortestPathExpert
from hch.experts.union_find import UnionFindExpert
from hch.experts.wildcard_search import WildcardExpert
from hch.workspace import Action, Workspace

EXPERTS: dict[str, Expert] = {
    expert.name: expert
    for expert in (
        ListExpert(), ExpressionExpert(), PermutationExpert(), SequentialAssignmentsExpert(),
        WildcardExpert(), ShortestPathExpert(), UnionFindExpert(),
    )
}
"""Every built-in expert by name; task suites add theirs here."""


def register(expert: Expert) -> Expert:
    """Make an expert part of the default `ExpertPolicy`."""
    EXPERTS[expert.name] = expert
    return expert


class ExpertPolicy:
    """The policy that asks each expert in turn whether it knows the question."""

    depth_stable = True
    """A subtree it answered without a guess is answered the same at any depth that fits it."""

    def __init__(self, experts: Sequence[Expert] | None = None) -> None:
        self.experts = list(experts) if experts is not None else list(EXPERTS.values())

    @property
    def fingerprint(self) -> str:
        return "expert(" + ",".join(f"{e.name}@{e.version}" for e in self.experts) + ")"

    def check(self, question: str, context: str) -> None:
        if not any(e.knows(question, context) for e in self.experts):
            forms = "; ".join(form for e in self.experts for form in e.forms)
            raise QuestionError(
                f"the offline expert cannot parse {question!r}; it knows: {forms}. "
                "For other questions use --policy llm or --policy human"
            )

    async def act(self, workspace: Workspace) -> Action:
        from hch.policies.check import redo

        for expert in self.experts:
            if expert.knows(workspace.question, workspace.context):
                return expert.act(redo(workspace))  # a check's "not confirmed" is not a refused ask
        raise PolicyError(f"no expert knows the question {workspace.question!r}")


__all__ = ["EXPERTS", "Expert", "ExpertPolicy", "register"]
