"""How the experts act in pointer mode (`hch.run.pointers`): they decide from what they see.

A list reduction over a pointer ("What is the sum of $1?") is routed: the expert expands `$1`; a
list of numbers it then treats as any list; a list holding pointers (a long list is stored as halves,
`$2, $3`) it answers by asking the reduction of each pointer, passing them on unexpanded, so it never
reads the data it routes. Where it may not ask it reads on, one expansion per action, and guesses
from the numbers it read (exactly, if they are two). Any other question: the expert expands every
pointer it sees, one per action, and once nothing is left unread acts on the workspace with the
contents in place, as without pointers; an expansion refused (its bandwidth is spent) leaves it a
guess it marks as one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

from hch.experts.arithmetic import ALIASES, NUMBER, REDUCTIONS, ListExpert, list_question
from hch.experts.base import combined, format_number, number_of
from hch.workspace import Action, Answer, Ask, Expand, Reply, SubAnswer, Workspace

POINTER = re.compile(r"\$(\d+)")
ROUTED = re.compile(r"^\s*what\s+is\s+the\s+(sum|product|maximum|minimum|max|min)\s+of\s+(\$\d+)\s*\?\s*$", re.I)
Decide = Callable[[Workspace], Action | Reply]


def act(workspace: Workspace, decide: Decide) -> Action | Reply:
    """The expert's action on a pointer-mode view; `decide` is its action on a view without pointers."""
    routed = ROUTED.match(workspace.question)
    if routed is not None:
        op = routed.group(1).lower()
        return _route(workspace, ALIASES.get(op, op), routed.group(2))
    return _read(workspace, decide)


def _contents(workspace: Workspace) -> dict[str, str]:
    return {expansion.pointer: expansion.content for expansion in workspace.expanded}


def _route(workspace: Workspace, op: str, pointer: str) -> Action:
    contents = _contents(workspace)
    if pointer not in contents:  # reading the top of a list costs little: see what it holds
        return Expand(pointer=pointer) if workspace.refusal is None else _read_guess(workspace, op)
    items = [item.strip() for item in contents[pointer].split(",")]
    if not all(POINTER.fullmatch(item) or re.fullmatch(NUMBER, item) for item in items):
        return Answer(answer=f"{pointer} is not a list of numbers", guess=True)
    pointers = [item for item in items if POINTER.fullmatch(item)]
    subs = workspace.answers
    unread = next((sub.answer for sub in subs if POINTER.fullmatch(sub.answer.strip()) and
                   sub.answer.strip() not in contents), None)
    if unread is not None:  # a sub-answer too long for the view came as a pointer: read it
        return Expand(pointer=unread.strip()) if workspace.refusal is None else _read_guess(workspace, op)
    subs = [sub.model_copy(update={"answer": contents.get(sub.answer.strip(), sub.answer)}) for sub in subs]
    if not pointers:  # numbers only: the list as any list
        numbers = [Fraction(item) for item in items]
        steps = (tuple(subs),) if subs else ()
        view = workspace.model_copy(update={"question": list_question(op, numbers), "steps": steps})
        return ListExpert().act(view)
    numbers = [Fraction(item) for item in items if not POINTER.fullmatch(item)]
    if len(subs) == len(pointers):
        return _combine(op, numbers + [number_of(sub) for sub in subs], subs)
    if workspace.can_ask and workspace.refusal is None and len(pointers) <= workspace.max_asks:
        return Ask(questions=[f"What is the {op} of {item}?" for item in pointers])  # routed unread
    return _read_guess(workspace, op)


def _combine(op: str, values: list[Fraction], subs: list[SubAnswer]) -> Answer:
    reduce = REDUCTIONS[op]
    total = values[0]
    for value in values[1:]:
        total = reduce(total, value)
    return combined(format_number(total), subs)


def _read_guess(workspace: Workspace, op: str) -> Action:
    """Where it may not ask: read on (one pointer per action) while nothing was refused, then guess."""
    contents = _contents(workspace)
    unread = _unread(contents)
    if unread is not None and workspace.refusal is None:
        return Expand(pointer=unread)
    numbers = [Fraction(n) for text in contents.values() for n in re.findall(rf"(?<![\d$]){NUMBER}", text)]
    if unread is None and len(numbers) <= 2 and numbers:
        value = numbers[0] if len(numbers) == 1 else REDUCTIONS[op](numbers[0], numbers[1])
        return Answer(answer=format_number(value))
    if len(numbers) >= 2:
        return Answer(answer=ListExpert.estimate(op, numbers, workspace.question), guess=True)
    return Answer(answer=format_number(numbers[0]) if numbers else "0", guess=True)


def _unread(contents: dict[str, str]) -> str | None:
    """The first pointer shown in the expanded contents that is not expanded yet."""
    for text in contents.values():
        for found in POINTER.finditer(text):
            if found.group(0) not in contents:
                return found.group(0)
    return None


def _read(workspace: Workspace, decide: Decide) -> Action | Reply:
    contents = _contents(workspace)
    texts = [workspace.question, workspace.context, *[s.answer for s in workspace.answers], *contents.values()]
    unread = next((f.group(0) for t in texts for f in POINTER.finditer(t) if f.group(0) not in contents), None)
    if unread is not None:
        if workspace.refusal is not None:  # its bandwidth is spent (or the expand was refused otherwise)
            return Answer(answer=f"I could not read {unread} within my bandwidth", guess=True)
        return Expand(pointer=unread)
    return decide(resolved(workspace))


def resolved(workspace: Workspace) -> Workspace:
    """The view with every expanded pointer replaced by its content (all are expanded)."""
    contents = _contents(workspace)

    def fill(text: str) -> str:
        for _ in range(len(contents) + 1):
            grown = POINTER.sub(lambda found: contents.get(found.group(0), found.group(0)), text)
            if grown == text:
                break
            text = grown
        return text

    steps = tuple(
        tuple(sub.model_copy(update={"answer": fill(sub.answer)}) for sub in step) for step in workspace.steps
    )
    return workspace.model_copy(update={
        "question": fill(workspace.question), "context": fill(workspace.context), "steps": steps,
        "expanded": (), "pointers": False, "bandwidth_left": None,
    })
