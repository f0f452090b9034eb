"""What a node sees (the workspace) and what a policy may do with it (an action)."""

from __future__ import annotations

import warnings
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["ok", "guess", "error"]


class SubAnswer(BaseModel):
    """One subquestion a node asked and the answer its HCH_(n-1) copy returned."""

    model_config = ConfigDict(frozen=True)

    question: str
    """The subquestion as the node asked it."""
    answer: str
    """The answer returned (for an error, a short description of what failed)."""
    status: Status = "ok"
    """`ok`, `guess` (answered without enough depth) or `error`."""


def _empty(value: object) -> bool:
    return not value


def _none(value: object) -> bool:
    return value is None


class Expansion(BaseModel):
    """A pointer this workspace's H expanded, and what it showed (pointer mode, see `hch.run.pointers`)."""

    model_config = ConfigDict(frozen=True)

    pointer: str
    """The pointer as H wrote it, e.g. `$3`."""
    content: str
    """The message's content, its own pointers numbered in this workspace's view."""
    step: int = 0
    """How many steps of asking this node had taken when it expanded the pointer (orders the view)."""


# `copy` shadows pydantic v1's deprecated `BaseModel.copy()` (use `model_copy()`): the field is
# the name the design gives a node's copy id, so the shadowing warning is silenced here only.
warnings.filterwarnings("ignore", message='Field name "copy" in "Workspace" shadows', category=UserWarning)


class Workspace(BaseModel):
    """Everything a node may see: its question, the shared context and its own sub-answers.

    A node sees nothing else: not its parent, not its siblings, not the rest of the tree.
    """

    model_config = ConfigDict(frozen=True)

    question: str
    """The question this node must answer."""
    depth: int
    """The n of this node's HCH_n: at 0 it cannot ask subquestions."""
    context: str = ""
    """The run's shared context (e.g. a task's facts), identical for every node; with facts hidden,
    only its header line (unless the policy `sees_facts`)."""
    steps: tuple[tuple[SubAnswer, ...], ...] = ()
    """The subquestions asked so far, one tuple per step, with their answers."""
    max_asks: int = 8
    """How many subquestions one step may ask."""
    steps_left: int = 8
    """How many more steps of asking this node may take."""
    refusal: str | None = None
    """Why the previous action was refused, if it was; the policy should act differently."""
    copy: str = Field(default="", exclude_if=_empty)  # type: ignore[assignment]
    """An opaque id of this copy of H, "" when copies are merged (see `answer(copies=...)`).

    Policies that sample (the noisy expert, an LLM at temperature > 0) seed from it, so identical
    subquestions asked at different places draw independently. It tells H nothing about its place
    in the tree. Left out of every dump when empty, so merged runs keep their cache keys and traces."""
    pointers: bool = Field(default=False, exclude_if=_empty)
    """Pointer mode (`hch.run.pointers`): `$N` in this view are pointers to messages H sees only by
    expanding them, and `[[...]]` in what H writes makes a new message. Left out of dumps when off."""
    expanded: tuple[Expansion, ...] = Field(default=(), exclude_if=_empty)
    """The pointers H expanded in this workspace so far, in order (pointer mode only)."""
    bandwidth_left: int | None = Field(default=None, exclude_if=_none)
    """Characters H may still see in this workspace (None: no bandwidth limit); an expansion that
    would show more is refused."""
    budget: int | None = Field(default=None, exclude_if=_none)
    """Budgeted HCH (`answer(budget=N)`): the policy calls this node and its subquestions may still make
    after the call being made now (None: the run is not budgeted). At 0 this is the node's last call: it
    must answer. An ask gives each subquestion at least one call and keeps one for the node's own next
    call, so it needs `budget >= 1 + len(questions)` (see `hch.run.call_budget`). Left out of every dump
    when None, so runs without a budget keep their cache keys and traces."""

    @property
    def can_ask(self) -> bool:
        """Whether an ask would be accepted (depth, step and call budget permitting; a budgeted ask of
        k subquestions needs `budget >= k + 1`, so this checks room for one)."""
        return self.depth > 0 and self.steps_left > 0 and (self.budget is None or self.budget >= 2)

    @property
    def answers(self) -> list[SubAnswer]:
        """All sub-answers so far, flattened across steps."""
        return [sub for step in self.steps for sub in step]


class Ask(BaseModel):
    """Put one or more subquestions to copies of HCH_(n-1); they run concurrently."""

    kind: Literal["ask"] = "ask"
    questions: list[str] = Field(min_length=1)
    """The subquestions of this step."""
    budgets: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, exclude_if=_none)
    """Budgeted HCH: the policy calls given to each subquestion, in order (one per question, together at
    most `Workspace.budget - 1`); None: the default share, `(budget - 1) // len(questions)` each. Ignored
    in a run without a budget. Left out of every dump when None."""


class Answer(BaseModel):
    """End the node with an answer."""

    kind: Literal["answer"] = "answer"
    answer: str
    """The node's final answer."""
    guess: bool = False
    """True when the policy answered without being able to work it out (e.g. at depth 0)."""


class Expand(BaseModel):
    """Show the content of one pointer in this workspace (pointer mode): one action, one more policy call."""

    kind: Literal["expand"] = "expand"
    pointer: str
    """The pointer as it appears in the workspace, e.g. `$3`."""


Action = Annotated[Ask | Answer | Expand, Field(discriminator="kind")]


class Usage(BaseModel):
    """Tokens and money spent by one policy call (zero for offline policies)."""

    prompt_tokens: int = 0
    """Input tokens billed."""
    completion_tokens: int = 0
    """Output tokens billed."""
    cached_tokens: int = 0
    """Input tokens the server served from its prompt cache (part of prompt_tokens)."""
    cost: float = 0.0
    """Cost in US dollars, from the policy's price table."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cost=self.cost + other.cost,
        )


class Reply(BaseModel):
    """A policy's full output for one workspace: the action plus what it cost and how."""

    action: Action
    """What the policy decided."""
    usage: Usage = Field(default_factory=Usage)
    """Tokens and money this call spent."""
    raw: dict[str, Any] | None = None
    """Policy-specific record of the call (e.g. the request messages and raw response)."""
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    """Each attempt made (status, wait, error), for policies that retry."""
    invocations: int = Field(default=1, ge=1)
    """How many times a base policy was invoked to make this reply (a vote of k copies: k)."""


def normalize_question(question: str) -> str:
    """The form of a question used for cache keys and cycle detection: whitespace folded."""
    return " ".join(question.split())
