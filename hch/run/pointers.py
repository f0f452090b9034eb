"""Message passing with pointers, after Ought's Patchwork: messages, per-workspace pointers, bandwidth.

In pointer mode (`Limits(pointers=True)` or `Limits(bandwidth=N)`, `--pointers`/`--bandwidth N`) text
may hold pointers to messages instead of copied text. Inside a run a pointer is written `$m` and 12
hex digits, the start of the SHA-256 of the message's content (so one content has one pointer in every
run, and identical subtrees stay identical). A workspace's H never sees those: its view names the
pointers it can see `$1`, `$2`, ... in the order they first appear in it (question, context, then its
expansions and steps in the order they happened), so identical views are identical text, and the call
cache, which keys on the view, shares their calls even where the pointers lead to different messages.

Messages come from four places: `[[...]]` in the root question, the context or anything H writes
(Patchwork's syntax; nested brackets make nested messages); the shown context when it is longer than
`MESSAGE_CHARS`; and sub-answers longer than that, or longer than the asker's bandwidth left, which
the asker is shown as a pointer. A message longer than `MESSAGE_CHARS` is stored as two halves (split
at the ", ", line break or space nearest its middle), its content then being `$a, $b`: large data is
read a piece at a time, and a node can route a half to a subquestion without reading it.

H sees a pointer's content only by expanding it (`Expand`), one action (a policy call) per pointer.
The bandwidth is the number of characters H may see in one workspace: its question, its context,
its sub-answers and its expansions as shown (pointers count as the `$N` they are shown as; the
subquestions H wrote itself do not count). An expansion that would pass it is refused, as is one of a
pointer the workspace does not show. Everything is escaped where it is rendered: contents are data.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from hch.errors import QuestionError
from hch.run.policy import ChecksQuestions
from hch.workspace import Action, Answer, Expand, Expansion, SubAnswer, Workspace

MESSAGE_CHARS = 40
"""The longest text shown inline where a pointer could stand instead (the context, a sub-answer), and
the longest message stored whole (a longer one is stored as two halves)."""
MAX_RESOLVED_CHARS = 1_000_000
"""The most characters a rendered answer may grow to when its pointers are resolved for the user;
pointers beyond it stay unresolved (messages can repeat pointers, so resolving can grow exponentially)."""
GLOBAL = re.compile(r"\$m([0-9a-f]{12})")
"""A pointer inside a run (in traces too): `$m` and a message id."""
LOCAL = re.compile(r"\$(\d+)")
"""A pointer in a workspace's view, as H reads and writes it."""
_MARKUP = re.compile(r"(\[\[|\]\])")


class PointerError(ValueError):
    """Text or an action that does not hold valid pointers; the message says what to do instead."""


class Messages:
    """A run's content-addressed message store: message id -> content (in the run's internal form).

    The table is `trace.meta["messages"]` itself, so the trace holds every message its nodes point to."""

    def __init__(self, table: dict[str, str] | None = None) -> None:
        self.table: dict[str, str] = table if table is not None else {}

    def put(self, content: str) -> str:
        """Store `content` (halved while longer than `MESSAGE_CHARS`) and return its pointer."""
        if len(content) > MESSAGE_CHARS:
            halves = _halves(content)
            if halves is not None:
                left, sep, right = halves
                content = self.put(left) + sep + self.put(right)
        ident = hashlib.sha256(content.encode()).hexdigest()[:12]
        self.table.setdefault(ident, content)
        return "$m" + ident

    def content(self, ident: str) -> str:
        return self.table[ident]

    def markup(self, text: str) -> str:
        """`text` with every `[[...]]` stored as a message and replaced by its pointer (innermost first)."""
        if "[[" not in text and "]]" not in text:
            return text
        stack: list[list[str]] = [[]]
        for part in _MARKUP.split(text):
            if part == "[[":
                stack.append([])
            elif part == "]]":
                if len(stack) == 1:
                    raise PointerError("']]' closes no '[[': write a message as [[its text]]")
                inner = "".join(stack.pop())
                stack[-1].append(self.put(inner))
            else:
                stack[-1].append(part)
        if len(stack) > 1:
            raise PointerError("'[[' is not closed: write a message as [[its text]]")
        return "".join(stack[0])

    def outside(self, text: str) -> str:
        """Text from outside the run (the root question, the context) in internal form: `[[...]]` become
        messages; a `$` before a digit is refused (no message exists yet for it to point to)."""
        found = LOCAL.search(text) or GLOBAL.search(text)
        if found is not None:
            raise PointerError(
                f"{found.group(0)!r} would be a pointer, and no message exists for it to point to: "
                "in pointer mode write data as [[...]] (a message), and no '$' before a digit"
            )
        return self.markup(text)

    def absorb(self, table: dict[str, str]) -> None:
        """Take the messages of another run's trace (a subtree grafted from it points to them)."""
        for ident, content in table.items():
            self.table.setdefault(ident, content)

    def resolve(self, text: str) -> str:
        """`text` with every pointer replaced by its content, recursively: the answer a user reads."""
        for _ in range(10_000):
            found = GLOBAL.search(text)
            if found is None:
                return text
            grown = GLOBAL.sub(lambda m: self.table.get(m.group(1), m.group(0)), text)
            if grown == text or len(grown) > MAX_RESOLVED_CHARS:
                return text
            text = grown
        return text


def _halves(content: str) -> tuple[str, str, str] | None:
    """`content` cut in two at the separator nearest its middle (never inside a pointer), or None."""
    middle = len(content) // 2
    for sep in (", ", "\n", " "):
        places = [m.start() for m in re.finditer(re.escape(sep), content)]
        if places:
            cut = min(places, key=lambda place: (abs(place - middle), place))
            return content[:cut], sep, content[cut + len(sep):]
    for found in GLOBAL.finditer(content):
        if found.start() < middle < found.end():
            middle = found.end()
    if 0 < middle < len(content):
        return content[:middle], "", content[middle:]
    return None


class View:
    """One workspace in pointer mode: how its pointers are named, what H expanded, what bandwidth is left."""

    def __init__(self, messages: Messages, bandwidth: int | None) -> None:
        self.messages, self.bandwidth = messages, bandwidth
        self.expansions: list[tuple[str, int]] = []  # (message id, steps taken when expanded), in order
        self.ids: list[str] = []  # message id of $1, $2, ... as last shown
        self.names: dict[str, int] = {}
        self.used = 0  # characters the last view showed

    def _render(self, text: str, ids: list[str], names: dict[str, int]) -> str:
        def name(found: re.Match[str]) -> str:
            ident = found.group(1)
            if ident not in names:
                ids.append(ident)
                names[ident] = len(ids)
            return f"${names[ident]}"

        return GLOBAL.sub(name, text)

    def show(self, workspace: Workspace) -> Workspace:
        """The view H is shown of a workspace the engine built in internal form."""
        ids: list[str] = []
        names: dict[str, int] = {}

        def render(text: str) -> str:
            return self._render(text, ids, names)

        question, context = render(workspace.question), render(workspace.context)
        used = len(question) + len(context)
        steps: list[tuple[SubAnswer, ...]] = []
        expanded: list[Expansion] = []
        for index in range(len(workspace.steps) + 1):
            for ident, step in self.expansions:
                if step == index:
                    content = render(self.messages.content(ident))
                    used += len(content)
                    expanded.append(Expansion(pointer=f"${names[ident]}", content=content, step=step))
            if index < len(workspace.steps):
                subs = tuple(
                    sub.model_copy(update={"question": render(sub.question), "answer": render(sub.answer)})
                    for sub in workspace.steps[index]
                )
                used += sum(len(sub.answer) for sub in subs)
                steps.append(subs)
        self.ids, self.names, self.used = ids, names, used
        return workspace.model_copy(update={
            "question": question, "context": context, "steps": tuple(steps), "expanded": tuple(expanded),
            "pointers": True, "bandwidth_left": None if self.bandwidth is None else max(0, self.bandwidth - used),
        })

    def take(self, action: Action, step: int) -> tuple[Action | None, str | None]:
        """H's action in internal form (None for an expansion, carried out here), or why it is refused."""
        try:
            if isinstance(action, Expand):
                return None, self.expand(action.pointer, step)
            if isinstance(action, Answer):
                return action.model_copy(update={"answer": self.internal(action.answer)}), None
            return action.model_copy(update={"questions": [self.internal(q) for q in action.questions]}), None
        except PointerError as exc:
            return None, str(exc)

    def internal(self, text: str) -> str:
        """What H wrote, with its `$N` turned into the run's pointers and `[[...]]` into messages."""
        if (found := GLOBAL.search(text)) is not None:
            raise PointerError(f"{found.group(0)!r} is not a pointer of this workspace; {self._have()}")

        def pointer(found: re.Match[str]) -> str:
            number = int(found.group(1))
            if not 1 <= number <= len(self.ids):
                raise PointerError(f"there is no pointer ${number} in your workspace; {self._have()}")
            return "$m" + self.ids[number - 1]

        return self.messages.markup(LOCAL.sub(pointer, text))

    def expand(self, pointer: str, step: int) -> str | None:
        """Expand `pointer` (as H wrote it), or say why not."""
        found = LOCAL.fullmatch(pointer.strip())
        if found is None:
            raise PointerError(f"{pointer[:40]!r} is not a pointer: expand one as your workspace shows it, e.g. $1")
        number = int(found.group(1))
        if not 1 <= number <= len(self.ids):
            raise PointerError(f"there is no pointer ${number} in your workspace; {self._have()}")
        ident = self.ids[number - 1]
        if any(ident == done for done, _ in self.expansions):
            raise PointerError(f"${number} is already expanded: its content is in your workspace")
        size = len(self._render(self.messages.content(ident), list(self.ids), dict(self.names)))
        if self.bandwidth is not None and self.used + size > self.bandwidth:
            left = max(0, self.bandwidth - self.used)
            raise PointerError(
                f"expanding ${number} would show {size} characters, and only {left} of this workspace's "
                f"bandwidth of {self.bandwidth} characters are left: pass ${number} on unexpanded "
                "(in a subquestion or your answer), or answer with what you have"
            )
        self.expansions.append((ident, step))
        return None

    def settle(self, answers: tuple[SubAnswer, ...]) -> tuple[SubAnswer, ...]:
        """A step's sub-answers as the asker will see them: inline when short and within the bandwidth
        left, else as a pointer to a message holding the answer."""
        left = None if self.bandwidth is None else self.bandwidth - self.used
        settled = []
        for sub in answers:
            if sub.status == "error":  # the engine's words: a `$` it quotes is no pointer of this view
                sub = sub.model_copy(update={"answer": escape_pointers(sub.answer)})
            size = len(GLOBAL.sub("$99", sub.answer))
            if size > MESSAGE_CHARS or (left is not None and size > left):
                if GLOBAL.fullmatch(sub.answer) is None:
                    sub = sub.model_copy(update={"answer": self.messages.put(sub.answer)})
                size = 3
            left = None if left is None else left - size
            settled.append(sub)
        return tuple(settled)

    def record(self) -> dict[str, Any]:
        """The node attributes pointer mode adds to the trace (see `hch.record.format.WorkspaceNode`)."""
        return {
            "pointers": {f"${number}": "$m" + ident for number, ident in enumerate(self.ids, start=1)},
            "expansions": [
                {"pointer": f"${self.names[ident]}", "message": "$m" + ident, "step": step}
                for ident, step in self.expansions
            ],
        }

    def _have(self) -> str:
        if not self.ids:
            return "it shows no pointers"
        return f"it shows $1 to ${len(self.ids)}" if len(self.ids) > 1 else "it shows only $1"


class Pointers:
    """Pointer mode for one run: its message store and the bandwidth of every workspace."""

    def __init__(self, messages: Messages, bandwidth: int | None) -> None:
        self.messages, self.bandwidth = messages, bandwidth
        self._contexts: dict[str, str] = {}

    def view(self) -> View:
        return View(self.messages, self.bandwidth)

    def context(self, shown: str) -> str:
        """The context as workspaces show it: a pointer when longer than `MESSAGE_CHARS`."""
        found = self._contexts.get(shown)
        if found is None:
            inner = self.messages.outside(shown)
            found = self._contexts[shown] = (
                self.messages.put(inner) if len(GLOBAL.sub("$99", inner)) > MESSAGE_CHARS else inner
            )
        return found


def escape_pointers(text: str) -> str:
    """Engine-made text (an error message) for a view: a `$N` it quotes is not a pointer there."""
    return LOCAL.sub(lambda found: "\uff04" + found.group(1), text)


def check(policy: ChecksQuestions, question: str, context: str) -> None:
    """A policy's up-front check of a root question in pointer mode: the question as the root's view shows
    it (`Report $1`), or else as it reads once its pointers are expanded (an expert reads before it decides).
    Markup that does not parse, or a `$` before a digit, is a `QuestionError`."""
    messages = Messages()
    try:
        asked = messages.outside(question)
        Messages().outside(context)
    except PointerError as exc:
        raise QuestionError(f"pointer mode: {exc}") from None
    try:
        policy.check(View(messages, None).show(Workspace(question=asked, depth=0)).question, context)
    except QuestionError:
        policy.check(messages.resolve(asked), context)
