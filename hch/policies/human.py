"""A person at the terminal plays H: each workspace is shown, and the person types what to do.

Commands at the prompt:

    ask <question>    queue a subquestion for this step (several per step)
    go                send the queued subquestions; their answers come back in a later prompt
    answer <text>     end this node with an answer
    guess <text>      the same, marked as a guess
    drop [N]          forget the queued subquestion N (default: all of them)
    expand $N         show the content of pointer $N (pointer mode only)
    budgets N ...     (budgeted runs) give the queued subquestions these shares of your calls, in order
    show              show the workspace again
    help              list the commands
    quit              stop the run (like Ctrl-D); what was answered is kept

Workspaces that become ready together (the subquestions of one step run concurrently) wait in
a queue and are shown one at a time. Every piece of content (questions, answers, context) is
data: it is shown with control characters escaped and is never parsed as markup.

On a terminal the prompt has line editing and history (prompt_toolkit); otherwise lines are read
plainly from standard input. When a time limit applies to the call, the prompt counts down and says
so when it fires. Each reply's `raw` keeps what was typed, when the workspace was shown and answered
(wall-clock) and the seconds the person spent on it, so they survive being served from the cache.
"""

from __future__ import annotations

import codecs
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio
from anyio.lowlevel import RunVar
from rich.console import Console
from rich.text import Text

from hch.cli.render import plain
from hch.errors import Stopped
from hch.run.policy import components
from hch.run.position import Position, current, deadline
from hch.validate import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, action_problem, unicode_problem, valid_text
from hch.workspace import Action, Answer, Ask, Expand, Reply, Workspace

COMMANDS = "ask <question> · go · answer <text> · guess <text> · drop [N] · budgets N ... · show · help · quit"
HELP = """\
ask <question>   queue a subquestion for this step; ask several, then send them together
go               send the queued subquestions (each is answered by a copy of HCH with one level less)
answer <text>    end this node with an answer
guess <text>     the same, marked as a guess (you could not work it out)
drop [N]         forget queued subquestion N, or all of them
budgets N ...    budgeted runs: give the queued subquestions these shares of your calls, one number each,
                 in order (budgets alone: the default, an even split of what you have left minus one)
show             show this workspace again
help             this list
quit, Ctrl-D     stop the run; answers given so far are kept, and rerunning the same command
                 asks only what was not answered yet (Ctrl-C stops it the same way)"""
COMMANDS_POINTERS = COMMANDS.replace(" · show", " · expand $N · show")
HELP_POINTERS = HELP.replace("\nshow ", """
expand $N        show the content of pointer $N (it costs a step, and bandwidth if there is a limit);
                 write $N in a question or answer to pass it on unread, [[text]] to make a message
show """)
STATUS_STYLE = {"ok": "green", "guess": "yellow", "error": "red"}
POLL_SECONDS = 0.05
MAX_LINE_CHARS = MAX_ANSWER_CHARS + 1000
"""Longest line read from piped input; the rest of a longer one is dropped as it arrives (not held)."""


OVERLONG = "[a line too long to keep]"
"""What the record of typed lines holds for a line that was dropped as too long."""


class _Overlong(str):
    """Stands for a line that was too long to keep (what the person is told, not what they typed)."""


class Lines(Protocol):
    """Where the person's input comes from, one line at a time."""

    async def readline(self) -> str | None:
        """The next line without its newline, or None once input has ended."""
        ...


class TerminalLines:
    """Lines from a file descriptor (standard input), read by a daemon thread.

    The thread reads with `os.read`, holding no Python lock, so a run stopped at the prompt
    exits at once; the event loop polls the thread's queue, so a cancelled wait loses nothing.
    """

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ended = False

    async def readline(self) -> str | None:
        if self._ended:
            return None
        if self._thread is None:
            self._thread = threading.Thread(target=self._pump, name="hch-human-input", daemon=True)
            self._thread.start()
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                await anyio.sleep(POLL_SECONDS)
                continue
            self._ended = line is None
            return line

    def _pump(self) -> None:
        # bytes that are not UTF-8 become lone surrogates, so the session can name them and ask again
        decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        pending = ""
        overlong = False
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                chunk = b""
            pending += decoder.decode(chunk, final=not chunk)
            *lines, pending = pending.split("\n")
            for line in lines:
                self._lines.put(_Overlong() if overlong or len(line) > MAX_LINE_CHARS else line.removesuffix("\r"))
                overlong = False
            if len(pending) > MAX_LINE_CHARS:  # keep none of it: say so when its newline comes
                pending, overlong = "", True
            if not chunk:
                if pending or overlong:
                    self._lines.put(_Overlong() if overlong else pending)
                self._lines.put(None)
                return


class PromptLines:
    """Lines typed at a terminal with line editing and history (prompt_toolkit); the prompt goes to stderr.

    The prompt is redrawn every second when it shows a countdown. Ctrl-C and Ctrl-D at the prompt
    end input (the run stops, as with `quit`).
    """

    def __init__(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.output.vt100 import Vt100_Output

        output = Vt100_Output.from_pty(sys.stderr)
        output.enable_cpr = False  # no cursor-position queries: nothing may wait for a terminal's answer
        self._session: Any = PromptSession(history=InMemoryHistory(), output=output)

    async def prompt(self, message: Callable[[], str], countdown: bool) -> str | None:
        """The next line typed after `message` (re-read every second with a countdown), or None at the end."""
        try:
            line: str = await self._session.prompt_async(
                lambda: [("bold", message())], refresh_interval=1.0 if countdown else None,
                set_exception_handler=False,
            )
        except (EOFError, KeyboardInterrupt):
            return None
        return line


class ListLines:
    """Lines given up front (for tests and demos); input ends after the last one."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = list(lines)

    async def readline(self) -> str | None:
        await anyio.lowlevel.checkpoint()
        return self._lines.pop(0) if self._lines else None


@dataclass
class _Desk:
    """The one terminal of a run: a queue of workspaces waiting for the person."""

    lock: anyio.Lock
    waiting: int = 0
    shown: int = 0
    stopped: bool = False
    """The person stopped the run: workspaces still queued are not shown."""
    progress: str = ""
    """How far a sweep has got (e.g. `3 of 20 runs done`), shown in each workspace's header."""


_DESK: RunVar[_Desk] = RunVar("hch_human_desk")


def _desk() -> _Desk:
    """The run's desk, shared by every human policy in this event loop (there is one terminal)."""
    try:
        return _DESK.get()
    except LookupError:
        desk = _Desk(anyio.Lock())
        _DESK.set(desk)
        return desk


def note_progress(text: str) -> None:
    """Show `text` (how far a sweep has got) in the header of the next workspaces; call it in the run's loop.

    A progress bar would draw over the prompt: a sweep with a person at the keyboard reports here instead.
    """
    _desk().progress = text


_STDIN: TerminalLines | PromptLines | None = None


def _stdin() -> TerminalLines | PromptLines:
    """One reader of standard input per process: two would split the person's lines between them. On a
    terminal (stdin and stderr), prompt_toolkit's line editing; otherwise plain lines."""
    global _STDIN
    if _STDIN is None:
        _STDIN = PromptLines() if os.isatty(0) and os.isatty(2) else TerminalLines(0)
    return _STDIN


def has_human(policy: object) -> bool:
    """Whether a person at the keyboard acts for some node of `policy` (votes and positional parts included)."""
    return any(isinstance(part, HumanPolicy) for part in components(policy))


class HumanPolicy:
    """H is the person at the terminal. `name` separates people's answers in the call cache."""

    def __init__(self, name: str | None = None, console: Console | None = None, lines: Lines | None = None) -> None:
        self.name = name
        self.console = console or Console(stderr=True, highlight=False)
        self.lines = lines

    @property
    def fingerprint(self) -> str:
        return f"human({self.name})" if self.name else "human"

    async def act(self, workspace: Workspace) -> Reply:
        desk = _desk()
        desk.waiting += 1
        queued = True
        arrived = time.monotonic()
        try:
            async with desk.lock:
                desk.waiting -= 1
                queued = False
                if desk.stopped:  # the person quit while this one waited: stop without showing it
                    raise Stopped("the run was stopped at the prompt")
                desk.shown += 1
                try:
                    return await _Session(self, workspace, desk, time.monotonic() - arrived).run()
                except Stopped:
                    desk.stopped = True
                    raise
        finally:
            if queued:
                desk.waiting -= 1

    def __repr__(self) -> str:
        return f"HumanPolicy({self.fingerprint!r})"


class _Session:
    """One workspace in front of the person, until they send asks or an answer."""

    def __init__(self, policy: HumanPolicy, workspace: Workspace, desk: _Desk, waited: float = 0.0) -> None:
        self.console, self.workspace, self.desk = policy.console, workspace, desk
        self.lines = policy.lines or _stdin()
        self.position = current()
        self.pending: list[str] = []
        self.shares: list[int] | None = None
        """Budgeted runs: the shares typed with `budgets` for the queued subquestions (None: the default)."""
        self.waited = waited
        self.deadline = deadline()

    async def run(self) -> Reply:
        """Prompt until an action. The reply's `raw` (in the trace and the cache) keeps every line typed
        for it, when the workspace was shown and answered, and the seconds spent: `thinking_seconds` in
        front of it, `waited_seconds` queued behind other workspaces before."""
        shown_at, began = datetime.now(UTC), time.monotonic()
        self.show()
        typed: list[str] = []
        while True:
            line = await self.read()
            if line is None:
                self.console.print()
                raise Stopped("input ended at the prompt")
            overlong = isinstance(line, _Overlong) or len(line) > MAX_LINE_CHARS
            typed.append(OVERLONG if overlong else valid_text(line))  # what was typed, as files can hold it
            action = self.command(line)
            if action is not None:
                raw = {
                    "typed": typed, "shown_at": shown_at.isoformat(), "answered_at": datetime.now(UTC).isoformat(),
                    "thinking_seconds": round(time.monotonic() - began, 3), "waited_seconds": round(self.waited, 3),
                }
                return Reply(action=action, raw=raw)

    async def read(self) -> str | None:
        """One line at the prompt; when the call's time limit fires meanwhile, say so before giving up."""
        try:
            if isinstance(self.lines, PromptLines):
                return await self.lines.prompt(lambda: self.prompt().plain, countdown=self.deadline is not None)
            self.console.print(self.prompt(), end="")
            return await self.lines.readline()
        except anyio.get_cancelled_exc_class():
            if self.deadline is not None and anyio.current_time() >= self.deadline - 0.05:  # not another stop
                self.console.print()
                self.explain("time is up: this workspace's time limit ran out before you acted; it ends in error")
            raise

    def command(self, line: str) -> Action | None:
        """Carry out one typed line: an action ends the session, anything else re-prompts (a line that
        is not valid text or too long too: it is explained, and nothing of it is kept)."""
        if isinstance(line, _Overlong) or len(line) > MAX_LINE_CHARS:
            self.explain(f"that line is over {MAX_LINE_CHARS:,} characters long and was dropped; type a shorter one")
            return None
        if (problem := unicode_problem(line)) is not None:
            self.explain(f"that line is not valid text ({problem}); type it again")
            return None
        action = self._command(line)
        if action is not None and (problem := action_problem(action, self.workspace.max_asks)) is not None:
            self.explain(f"that cannot be used: {problem}; try again")
            return None
        return action

    def _command(self, line: str) -> Action | None:
        words = line.strip().split(maxsplit=1)
        if not words:
            return None
        verb, rest = words[0].lower(), words[1].strip() if len(words) > 1 else ""
        if verb == "ask":
            self.ask(rest)
        elif verb == "go":
            if self.pending:
                return self.send()
            self.explain("no subquestions queued yet: type ask <question> first")
        elif verb == "budgets":
            self.set_shares(rest)
        elif verb in ("answer", "guess"):
            return self.answer(rest, guess=verb == "guess")
        elif verb == "drop":
            self.drop(rest)
        elif verb == "expand":
            return self.expand(rest)
        elif verb == "show":
            self.show()
        elif verb in ("help", "?"):
            self.console.print(Text(HELP_POINTERS if self.workspace.pointers else HELP))
        elif verb in ("quit", "exit"):
            raise Stopped("you quit at the prompt")
        else:
            self.explain(f"unknown command {plain(verb, 40)!r}; commands: {self.commands()}")
        return None

    def ask(self, question: str) -> None:
        ws = self.workspace
        if not question:
            self.explain("ask what? type: ask <question>")
        elif ws.depth <= 0:
            self.explain("this node is HCH_0 (depth 0): it cannot ask subquestions; answer with: answer <text>")
        elif ws.steps_left <= 0:
            self.explain("this node has no steps of asking left; answer with: answer <text>")
        elif len(question) > MAX_QUESTION_CHARS:
            self.explain(
                f"the question is {len(question):,} characters long; at most {MAX_QUESTION_CHARS:,} are accepted"
            )
        elif ws.budget is not None and ws.budget < len(self.pending) + 2:
            self.explain(f"your call budget ({ws.budget} left) pays for at most {max(ws.budget - 1, 0)} "
                         "subquestion(s): each needs one call and you keep one to answer"
                         + ("; send these with go" if self.pending else "; answer with: answer <text>"))
        elif len(self.pending) >= ws.max_asks:
            self.explain(f"one step may ask at most {ws.max_asks} subquestions; send these with go first")
        else:
            self.pending.append(question)
            note = Text(f"  queued {len(self.pending)}: ", style="dim")
            note.append(plain(question))
            note.append("  (ask more, or send with go)", style="dim")
            self.console.print(note)

    def send(self) -> Action | None:
        """The queued subquestions as an ask, with the shares given (if they still fit the queue)."""
        if self.shares is not None and len(self.shares) != len(self.pending):
            self.explain(f"you gave {len(self.shares)} budgets for {len(self.pending)} queued subquestions: "
                         "type budgets again (one number each), or budgets alone for the default split")
            return None
        budgets = self.shares if self.workspace.budget is not None else None
        return Ask(questions=list(self.pending), budgets=budgets)

    def set_shares(self, text: str) -> None:
        """`budgets N ...`: shares of this node's calls for the queued subquestions (nothing: the default)."""
        left = self.workspace.budget
        if left is None:
            self.explain("this run has no call budget: there is nothing to share")
            return
        if not text:
            self.shares = None
            self.console.print(Text("  budgets: the default, an even split", style="dim"))
            return
        parts = text.replace(",", " ").split()
        if not all(part.isdigit() and len(part) <= 9 and int(part) >= 1 for part in parts):
            self.explain("budgets takes whole numbers of calls, each at least 1, e.g.: budgets 5 3")
        elif sum(map(int, parts)) > left - 1:
            self.explain(f"those add up to {sum(map(int, parts))}, but with {left} calls left you may give at most "
                         f"{max(left - 1, 0)} (you keep one to answer)")
        else:
            self.shares = [int(part) for part in parts]
            self.console.print(Text(f"  budgets: {', '.join(parts)}", style="dim"))

    def answer(self, text: str, guess: bool) -> Action | None:
        if not text:
            self.explain("the answer is empty; type: answer <text>")
            return None
        if self.pending:
            count = len(self.pending)
            self.explain(f"{count} queued subquestion(s) not sent: send them with go, or forget them with drop")
            return None
        return Answer(answer=text, guess=guess)

    def expand(self, pointer: str) -> Action | None:
        if not self.workspace.pointers:
            self.explain("this run has no pointers to expand (pointer mode is off)")
        elif not pointer:
            self.explain("expand which pointer? type: expand $1")
        elif self.pending:
            count = len(self.pending)
            self.explain(f"{count} queued subquestion(s) not sent: send them with go, or forget them with drop")
        else:
            return Expand(pointer=pointer)  # a pointer the workspace lacks is refused, and shown as refused
        return None

    def commands(self) -> str:
        return COMMANDS_POINTERS if self.workspace.pointers else COMMANDS

    def drop(self, which: str) -> None:
        if not which:
            dropped = len(self.pending)
            self.pending.clear()
            self.console.print(Text(f"  dropped {dropped} queued subquestion(s)", style="dim"))
            return
        if not which.isdigit() or not 1 <= int(which) <= len(self.pending):
            self.explain(f"drop takes the number of a queued subquestion (1 to {len(self.pending)}), or nothing")
            return
        gone = self.pending.pop(int(which) - 1)
        self.console.print(Text("  dropped: ", style="dim") + Text(plain(gone)))

    def explain(self, message: str) -> None:
        self.console.print(Text("  " + message, style="yellow"))

    def prompt(self) -> Text:
        where = f"#{self.position.node} " if self.position is not None else ""
        queued = f" ({len(self.pending)} queued)" if self.pending else ""
        calls = f" calls={self.workspace.budget}" if self.workspace.budget is not None else ""
        return Text(f"{where}n={self.workspace.depth}{calls}{queued}{self.time_left()}> ", style="bold")

    def time_left(self) -> str:
        """` [42s left]` when a time limit applies to this call, else nothing."""
        if self.deadline is None:
            return ""
        return f" [{max(0, math.ceil(self.deadline - anyio.current_time()))}s left]"

    def show(self) -> None:
        ws, console = self.workspace, self.console
        console.rule(Text(self.header(), style="bold"), align="left")
        console.print(_field("Question", ws.question, "bold"))
        console.print(_field("Depth", _depth_note(ws)))
        console.print(_field("Context", ws.context or "(none)", "" if ws.context else "dim"))
        for number, step in enumerate(ws.steps, 1):
            console.print(Text(f"Step {number}:", style="cyan"))
            for index, sub in enumerate(step, 1):
                line = Text(f"  {index}. ")
                line.append(_continued(plain(sub.question)))
                line.append(" → ")
                line.append(_continued(plain(sub.answer)), style=STATUS_STYLE.get(sub.status, ""))
                if sub.status != "ok":
                    line.append(f" [{sub.status}]", style="dim")
                console.print(line)
        for expansion in ws.expanded:
            console.print(_field(f"Expanded {expansion.pointer}", expansion.content))
        if ws.bandwidth_left is not None:
            console.print(_field("Bandwidth", f"{ws.bandwidth_left} characters left to see in this workspace"))
        budget = f"{ws.steps_left} steps of asking left · up to {ws.max_asks} subquestions per step"
        console.print(_field("Budget", budget if ws.depth > 0 else "no asking at depth 0"))
        if ws.budget is not None:
            console.print(_field("Calls", _calls_note(ws.budget)))
        if self.deadline is not None:
            seconds = max(0, math.ceil(self.deadline - anyio.current_time()))
            note = f"{seconds}s to act at this workspace (a time limit applies); the prompt shows the time left"
            console.print(_field("Time", note, "yellow"))
        if ws.refusal:
            console.print(_field("Refused", ws.refusal, "red"))
        for index, question in enumerate(self.pending, 1):
            console.print(Text(f"Queued {index}: ", style="cyan") + Text(plain(question)))
        console.print(Text(f"Commands: {self.commands()}", style="dim"))

    def header(self) -> str:
        """Where this workspace sits in the tree, and how many others wait behind it."""
        waiting = f" · {self.desk.waiting} more waiting" if self.desk.waiting else ""
        progress = f" · {self.desk.progress}" if self.desk.progress else ""
        return f"{_where(self.position, self.desk.shown)} · HCH_{self.workspace.depth}{waiting}{progress}"


def _where(position: Position | None, shown: int) -> str:
    if position is None:
        return f"workspace {shown}"
    if position.parent is None:
        return f"workspace #{position.node} · the root question"
    step, order = (position.step or 0) + 1, (position.order or 0) + 1
    asked = f"subquestion {order} of step {step} of #{position.parent}"
    return f"workspace #{position.node} · level {position.level} · {asked}"


def _calls_note(budget: int) -> str:
    """Budgeted HCH: what the calls left mean for the person."""
    if budget <= 0:
        return "0 calls left: this is your last action; answer now"
    return (f"{budget} more calls for you and your subquestions together (each subquestion needs at least 1, and "
            f"you keep 1 to answer); by default a step splits {budget - 1} evenly; give shares with: budgets N ...; "
            "what a subquestion does not spend comes back to you")


def _depth_note(ws: Workspace) -> str:
    if ws.depth <= 0:
        return "n=0: you cannot ask subquestions; answer directly (or guess)"
    return f"n={ws.depth}: you may ask subquestions; each is answered by a copy of HCH_{ws.depth - 1}"


def _continued(text: str) -> str:
    """Text shown in a numbered sub-answer line, its continuation lines indented under it (so a
    sub-answer cannot start a line of its own: a fake label or prompt stays inside its item)."""
    return text.replace("\n", "\n     ")


def _field(label: str, value: str, style: str = "") -> Text:
    """`label: value`, the value escaped and its continuation lines indented (so content cannot
    pass for one of the labels)."""
    text = Text()
    text.append(f"{label}: ", style="cyan")
    lines = plain(value).split("\n")
    text.append(lines[0], style=style)
    for line in lines[1:]:
        text.append("\n" + " " * (len(label) + 2))
        text.append(line, style=style)
    return text
