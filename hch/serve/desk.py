"""The live queue where runs and participants meet: the web policy puts workspaces here, pages take them.

A run's call to the `web` policy becomes an item; a participant's page asks the desk for work and gets
the item the barrier (`hch.serve.assignment`) allows, for at most the time budget; the reply the page
sends is committed to the store before the run gets it and before the page is told it was taken. An item
whose time ran out, or that its participant passed, goes to someone else. Everything runs on the server's
event loop (one thread), so choosing and assigning an item cannot race.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from pydantic import ValidationError

from hch.run.call_cache import call_key
from hch.serve.assignment import Barrier, Node, pick
from hch.serve.store import Assignment, Item, Store
from hch.validate import MAX_QUESTION_CHARS, unicode_problem
from hch.workspace import Action, Answer, Ask, Reply, Workspace

MAX_ANSWER_CHARS = 20_000
REAP_SECONDS = 0.25
"""How often time budgets are checked."""
WITHDRAWN = "the run no longer needs that workspace (its time limit ran out, or the run stopped)"
EXPIRED = "your time for that workspace ran out; it went to someone else"
LEFT = "you left the page while a workspace was yours; it went to someone else"
PASSED = "you passed that workspace on; it goes to someone else"


class Refused(Exception):
    """A participant's action was not taken; `status` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


@dataclass
class _Live:
    """An item a run is waiting for now."""

    item: Item
    done: anyio.Event = field(default_factory=anyio.Event)
    reply: Reply | None = None
    deadline: float | None = None
    """The engine's deadline for the call (wall clock), when a time limit applies."""
    waiters: int = 1
    """Calls waiting for it (the same workspace asked twice at once in one tree waits once)."""


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


class Desk:
    """The queue of one server: items waiting, who works on what, and the barrier's memory."""

    def __init__(self, store: Store, barrier: Barrier = "tree", time_budget: float | None = 600.0,
                 clock: Callable[[], float] = time.time, away: float | None = 60.0) -> None:
        self.store, self.barrier, self.time_budget, self.clock = store, barrier, time_budget, clock
        self.away = away
        """Seconds a participant holding a workspace may have no page open before it goes to someone else."""
        self.polling: dict[str, int] = {}
        """How many of each participant's pages wait for work right now (an open page always does)."""
        self.live: dict[int, _Live] = {}
        self.parents: dict[Node, int | None] = {}
        self.seen: dict[str, set[Node]] = {}
        self.refused: dict[str, set[int]] = {}
        self.current: dict[str, Assignment] = {}
        self.messages: dict[str, str] = {}
        self.last_seen: dict[str, float] = {}
        self.closing = False
        self.on_tree: Callable[[str], None] | None = None
        """Called with a tree's key the first time one of its workspaces is queued (the jobs record it)."""
        self._changed = anyio.Event()
        self._items: dict[int, Item] = {}
        self._trees: set[str] = set()
        self._load()

    def _load(self) -> None:
        """The barrier's memory and the open assignments, from the store (a restarted server keeps both)."""
        for item in self.store.items():
            self._items[item.id] = item
            self._trees.add(item.tree)
            self.parents[item.tree, item.node] = item.parent
        for assignment in self.store.assignments():
            self.seen.setdefault(assignment.participant, set()).add((assignment.tree, assignment.node))
            if assignment.outcome in ("expired", "left", "passed"):
                self.refused.setdefault(assignment.participant, set()).add(assignment.item)
            elif assignment.outcome is None:
                self.current[assignment.participant] = assignment  # until its run asks again, or it expires
                self.last_seen[assignment.participant] = self.clock()  # their page may come back

    # the run's side

    async def serve(self, fingerprint: str, workspace: Workspace, tree: str, node: int, parent: int | None,
                    deadline: float | None = None) -> Reply:
        """A participant's reply to `workspace` (node `node` of `tree`, asked by `parent`); waits until one
        answers. A reply stored before (the server restarted) is returned at once."""
        key = call_key(fingerprint, workspace)
        stored = self.store.answer_for(key)
        if stored is not None:
            return Reply.model_validate(stored)
        if tree not in self._trees:
            self._trees.add(tree)
            if self.on_tree is not None:
                self.on_tree(tree)
        item = self.store.queue(tree, node, parent, key, workspace.model_dump(mode="json"))
        live = self.live.get(item.id)
        if live is not None:
            live.waiters += 1
        else:
            self._items[item.id] = item
            self.parents[tree, node] = parent
            live = self.live[item.id] = _Live(item, deadline=deadline)
            self.notify()
        try:
            await live.done.wait()
        finally:
            live.waiters -= 1
            if live.reply is None and live.waiters == 0:
                self._withdraw(live)
        assert live.reply is not None
        return live.reply

    def _withdraw(self, live: _Live) -> None:
        """The run stopped waiting (its time limit, or the server is stopping): take the item back."""
        self.live.pop(live.item.id, None)
        if self.closing:
            return  # a restart: the item and its assignment stay as they are, to be taken up again
        self.store.close_item(live.item.id)
        for participant, assignment in list(self.current.items()):
            if assignment.item == live.item.id:
                self.store.end_assignment(assignment, "withdrawn")
                del self.current[participant]
                self.messages[participant] = WITHDRAWN
        self.notify()

    # the participants' side

    def notify(self) -> None:
        """Wake every page waiting for a change."""
        self._changed.set()
        self._changed = anyio.Event()

    async def changed(self, timeout: float) -> None:
        """Wait for the next change, at most `timeout` seconds."""
        with anyio.move_on_after(timeout):
            await self._changed.wait()

    def work(self, participant: str, take: bool = True) -> Assignment | None:
        """The participant's open assignment; with `take`, a new one when they have none and one is allowed."""
        self.last_seen[participant] = self.clock()
        self._expire()
        current = self.current.get(participant)
        if current is not None or not take or self.closing:
            return current
        return self._assign(participant)

    def _assign(self, participant: str) -> Assignment | None:
        taken = {a.item for a in self.current.values()}
        candidates = [((live.item.tree, live.item.node), live.item.enqueued, item_id)
                      for item_id, live in self.live.items() if item_id not in taken]
        seen = self.seen.setdefault(participant, set())
        chosen = pick(candidates, seen, self.refused.get(participant, set()), self.parents, self.barrier)
        if chosen is None:
            return None
        live = self.live[chosen]
        now = self.clock()
        ends = [t for t in (now + self.time_budget if self.time_budget else None, live.deadline) if t is not None]
        assignment = self.store.assign(live.item, participant, min(ends) if ends else None)
        self.current[participant] = assignment
        seen.add((live.item.tree, live.item.node))
        self.messages.pop(participant, None)
        self.notify()
        return assignment

    def item(self, item: int) -> Item:
        return self._items[item]

    @contextlib.contextmanager
    def present(self, participant: str) -> Iterator[None]:
        """While a participant's page waits for work (their page is open)."""
        self.polling[participant] = self.polling.get(participant, 0) + 1
        self.last_seen[participant] = self.clock()
        try:
            yield
        finally:
            self.polling[participant] -= 1
            self.last_seen[participant] = self.clock()

    def _expire(self) -> None:
        now = self.clock()
        for participant, assignment in list(self.current.items()):
            if assignment.deadline is not None and now >= assignment.deadline:
                self._let_go(participant, assignment, "expired", EXPIRED)
            elif (self.away and not self.polling.get(participant)
                  and now - self.last_seen.get(participant, now) > self.away):
                self._let_go(participant, assignment, "left", LEFT)

    def _let_go(self, participant: str, assignment: Assignment, outcome: str, message: str) -> None:
        self.store.end_assignment(assignment, outcome)
        del self.current[participant]
        self.refused.setdefault(participant, set()).add(assignment.item)
        self.messages[participant] = message
        self.notify()

    async def reap(self) -> None:
        """Forever: hand on the items whose time budget ran out (pages asleep in a poll learn it at once)."""
        while True:
            await anyio.sleep(REAP_SECONDS)
            self._expire()

    def pass_on(self, participant: str, assignment_id: int) -> None:
        """The participant gives their workspace back; it goes to someone else."""
        assignment = self._own(participant, assignment_id)
        self._let_go(participant, assignment, "passed", PASSED)

    def _own(self, participant: str, assignment_id: int) -> Assignment:
        self._expire()
        assignment = self.current.get(participant)
        if assignment is None or assignment.id != assignment_id:
            message = self.messages.get(participant) or "that workspace is no longer yours"
            raise Refused(409, message)
        return assignment

    def submit(self, participant: str, assignment_id: int, action: dict[str, Any]) -> Reply:
        """Take a participant's action: validated, stored (committed), then handed to the waiting run."""
        assignment = self._own(participant, assignment_id)
        live = self.live.get(assignment.item)
        if live is None:
            raise Refused(503, "the run is resuming after a restart: send it again in a moment", retry=True)
        workspace = Workspace.model_validate(live.item.workspace)
        parsed = parse_action(action, workspace)
        now = self.clock()
        history = [{"participant": a.participant, "shown_at": _iso(a.shown), "outcome": a.outcome,
                    **({"ended_at": _iso(a.ended)} if a.ended is not None else {})}
                   for a in self.store.assignments(assignment.item) if a.id != assignment.id]
        raw = {"participant": participant, "shown_at": _iso(assignment.shown), "answered_at": _iso(now),
               "thinking_seconds": round(now - assignment.shown, 3),
               "waited_seconds": round(max(0.0, assignment.shown - live.item.enqueued), 3),
               **({"earlier": history} if history else {})}
        reply = Reply(action=parsed, raw=raw)
        self.store.record_answer(live.item, assignment, reply.model_dump(mode="json"))
        del self.current[participant]
        live.reply = reply
        self.live.pop(assignment.item, None)
        live.done.set()
        self.notify()
        return reply

    def seconds_left(self, assignment: Assignment) -> float | None:
        if assignment.deadline is None:
            return None
        return max(0.0, assignment.deadline - self.clock())

    def job_ended(self, trees: set[str]) -> None:
        """A job finished: assignments of its trees that no run waits for any more are withdrawn."""
        for participant, assignment in list(self.current.items()):
            if assignment.tree in trees and assignment.item not in self.live:
                self.store.end_assignment(assignment, "withdrawn")
                del self.current[participant]
                self.messages[participant] = WITHDRAWN
        self.notify()


def parse_action(action: dict[str, Any], workspace: Workspace) -> Action:
    """A page's action as an `Ask` or `Answer`, checked against the workspace; a problem is `Refused` (400)."""
    kind = action.get("kind")
    if kind == "ask":
        questions = action.get("questions")
        if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
            raise Refused(400, "an ask needs a list of questions")
        questions = [q.strip() for q in questions if q.strip()]
        if not workspace.can_ask:
            raise Refused(400, "this workspace cannot ask (depth 0, or no steps left): answer or guess")
        if not questions:
            raise Refused(400, "write a subquestion first")
        if len(questions) > workspace.max_asks:
            raise Refused(400, f"one step may ask at most {workspace.max_asks} subquestions")
        for question in questions:
            _check_text(question, MAX_QUESTION_CHARS, "a subquestion")
        return Ask(questions=questions)
    if kind in ("answer", "guess"):
        text = action.get("answer")
        if not isinstance(text, str) or not text.strip():
            raise Refused(400, "the answer is empty")
        _check_text(text.strip(), MAX_ANSWER_CHARS, "the answer")
        try:
            return Answer(answer=text.strip(), guess=kind == "guess")
        except ValidationError as exc:  # pragma: no cover - the checks above cover what Answer requires
            raise Refused(400, str(exc)) from None
    raise Refused(400, "an action is ask, answer or guess")


def _check_text(text: str, limit: int, what: str) -> None:
    if len(text) > limit:
        raise Refused(400, f"{what} is {len(text)} characters long; at most {limit} are accepted")
    if (problem := unicode_problem(text)) is not None:
        raise Refused(400, f"{what} is not valid text: {problem}")

