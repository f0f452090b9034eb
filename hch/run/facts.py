"""What a policy is shown of a task's facts: all of them (`shown`) or only the task's header (`hidden`).

Under `hidden` (the 2018 paper's environment) H sees its question, its sub-answers and the
task's header line, never the facts; the task's environment (an oracle) answers the task's
primitive questions from the facts, without a policy call. Policies that declare
`sees_facts = True` (a learned model X, as in the paper) are shown the facts in either mode.
"""

from __future__ import annotations

from typing import Literal, get_args

Facts = Literal["shown", "hidden"]
"""`shown`: every node sees the whole context; `hidden`: only its header, the environment answers look-ups."""
FACTS: tuple[str, ...] = get_args(Facts)


def check_facts(value: str) -> Facts:
    """`value` as a facts mode, or a ValueError naming the allowed ones."""
    if value == "shown":
        return "shown"
    if value == "hidden":
        return "hidden"
    raise ValueError(f"facts must be one of {', '.join(FACTS)}, not {value!r}")


def sees_facts(policy: object) -> bool:
    """Whether a policy is shown the facts even when they are hidden from H."""
    return getattr(policy, "sees_facts", False) is True
