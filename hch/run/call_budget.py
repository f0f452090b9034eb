"""Budgeted HCH (after Christiano's ALBA, `amplify/hch.py`): a run's total budget of policy calls.

A budgeted run (`answer(budget=N)`, `hch ask --budget N`) may make at most N policy calls in all.
Every policy call the engine makes costs one unit: a fresh call, a call served from the policy-call
cache (it replays an action H really took, so a rerun spends exactly what the first run spent), a
failed call and a refused action alike; a vote of k copies is one call (of k invocations), as ALBA's
amplified action is one action. The task's environment (facts hidden) answers for free.

Each node is given an allowance. A node shown `Workspace.budget = b` may make b more calls after the
current one, itself and its subquestions together; at b = 0 it must answer. When it asks k subquestions
it gives each a share: `Ask.budgets` if it says, else the default share `(b - 1) // k` each (everything
but the one call it keeps to answer, split evenly). Each share is at least 1 and together they are at
most b - 1 (ALBA: at most what is left minus one; its default is a tenth of what is left per ask, which
suits its one-question asks, not hch's steps of several concurrent questions). What a subtree does not
spend returns to the asker once the step is done. Subtrees reused from the subtree cache spend what
they spent when they were computed (the key includes the budget given, so that is what they would
spend again).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BUDGET = 100_000
"""The largest budget a run takes (a run of HCH making more policy calls than this is out of scope)."""


@dataclass
class Allowance:
    """The policy calls one node (and its subtree) was given, and what it has left."""

    given: int
    left: int

    @classmethod
    def of(cls, given: int | None) -> Allowance | None:
        return None if given is None else cls(given, given)

    @property
    def spent(self) -> int:
        return self.given - self.left


def check_budget(budget: object) -> int | None:
    """`budget` as a run's call budget: None, or an int from 1 to `MAX_BUDGET` (else ValueError/TypeError)."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise TypeError(f"the budget must be an int (policy calls), not {budget!r}")
    if not 1 <= budget <= MAX_BUDGET:
        raise ValueError(f"the budget must be from 1 to {MAX_BUDGET} policy calls, not {budget}")
    return budget


def shares(budgets: list[int] | None, count: int, left: int) -> list[int] | str:
    """The budget each of `count` subquestions gets from a node with `left` calls after this one, or
    why the ask cannot be given them (a refusal sent back to the policy)."""
    room = left - 1  # the node keeps one call to answer with
    if budgets is None:
        each = room // count if room > 0 else 0
        if each < 1:
            return (f"your budget ({left} calls left) cannot pay for {count} subquestion(s): each needs at least "
                    "one call and you keep one to answer; ask fewer or answer now")
        return [each] * count
    if len(budgets) != count:
        return f"give one budget per subquestion: {len(budgets)} budgets for {count} subquestions"
    if sum(budgets) > room:
        return (f"the budgets you gave add up to {sum(budgets)}, but with {left} calls left you may give "
                f"at most {max(room, 0)} (you keep one to answer)")
    return list(budgets)


def budget_place(place: str, given: int | None) -> str:
    """A subtree key's place with the budget given (a node sees its budget, so it is part of the key)."""
    return place if given is None else f"{place}${given}"


def unbounded_depth(budget: int) -> int:
    """The depth of a budgeted run that leaves depth unbounded: the budget itself, which no chain of
    delegation reaches (each level below the root costs at least two calls, an ask and an answer)."""
    return budget
