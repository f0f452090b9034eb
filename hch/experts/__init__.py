"""Built-in experts: hand-written H's for algorithmic questions, the offline default policy.

An expert knows some question forms. It answers primitive questions directly (from the facts
when it is shown them; with facts hidden the task's environment answers those), decomposes
the rest into subquestions wherever it may ask, at any depth, and guesses, marked as a guess,
only where it may not ask (depth 0, no steps left, after a refusal, or in a budgeted run too few calls
left to give each subquestion of its step one and keep one to answer; it leaves the shares to the
engine's default, an even split). It may react to what it
sees, e.g. pass a guessed sub-answer up as a guess. `ExpertPolicy(early_guess=True)` (spec
`expert(early_guess)`) is the older variant that also guesses at once where a question shows
it needs more depth than the node has. Adding a task is adding an `Expert` (a module here) to
`EXPERTS`; the engine does not change.
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
from hch.workspace import Action, Ask, Reply, Workspace

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


def affordable(workspace: Workspace, ask: Ask) -> bool:
    """Whether a budgeted node can give each subquestion of `ask` its one call and keep one to answer
    (`hch.run.call_budget`); an expert whose step does not fit guesses, as where it may not ask."""
    return workspace.budget is None or workspace.budget >= len(ask.questions) + 1


class ExpertPolicy:
    """The policy that asks each expert in turn whether it knows the question."""

    depth_stable = True
    """A subtree it answered without a guess is answered the same at any depth that fits it (honest
    experts look at their depth only to know whether they may ask; the early guess fires only below
    the levels a guess-free subtree used)."""

    def __init__(self, experts: Sequence[Expert] | None = None, early_guess: bool = False) -> None:
        self.experts = list(experts) if experts is not None else list(EXPERTS.values())
        self.early_guess = early_guess

    @property
    def fingerprint(self) -> str:
        variant = "+early_guess" if self.early_guess else ""
        return "expert(" + ",".join(f"{e.name}@{e.version}" for e in self.experts) + ")" + variant

    def check(self, question: str, context: str) -> None:
        if not any(e.knows(question, context) for e in self.experts):
            forms = "; ".join(form for e in self.experts for form in e.forms)
            raise QuestionError(
                f"the offline expert cannot parse {question!r}; it knows: {forms}. "
                "For other questions use --policy llm or --policy human"
            )

    def decide(self, workspace: Workspace) -> tuple[Expert, Action]:
        """The expert that knows the question, and its action (an early guess for the variant)."""
        for expert in self.experts:
            if expert.knows(workspace.question, workspace.context):
                action = expert.act(workspace)
                if isinstance(action, Ask) and not affordable(workspace, action):
                    return expert, expert.guess(workspace)  # its step does not fit the budget: it may not ask
                if self.early_guess and isinstance(action, Ask) and expert.short(workspace):
                    return expert, expert.guess(workspace)
                return expert, action
        raise PolicyError(f"no expert knows the question {workspace.question!r}")

    async def act(self, workspace: Workspace) -> Action:
        from hch.policies.check import redo

        if workspace.pointers:  # pointer mode: it reads or routes what it sees (hch.experts.pointers)
            from hch.experts import pointers

            action = pointers.act(redo(workspace), lambda view: self.decide(view)[1])
            assert not isinstance(action, Reply)
            return action
        return self.decide(redo(workspace))[1]  # a check's "not confirmed" is not a refused ask


__all__ = ["EXPERTS", "Expert", "ExpertPolicy", "register"]
