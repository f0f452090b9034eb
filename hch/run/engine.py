"""The HCH_n evaluator: expands a question into a tree of workspaces, recording everything.

A node at depth n runs a loop: show the policy its workspace, and either finish with the
policy's answer or run the asked subquestions concurrently as HCH_(n-1) nodes and loop
with their answers added. Identical subtrees are expanded once (see `subtree_cache`),
identical policy calls are made once ever (see `call_cache`). With facts hidden (`hch.run.facts`),
a policy sees only the context's header line, and the task's environment answers its
primitive questions without a policy call (nodes marked `oracle`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio

from hch.errors import HchError, NodeFailed, PolicyError, QuestionError, RunAborted, Stopped
from hch.limits import Limits
from hch.policies.callable import PolicyFunction
from hch.policies.spec import as_policy
from hch.record.journal import for_trace as open_journal
from hch.record.stable_ids import Place, previous_ids
from hch.record.summary import Summary, Tally, summarize
from hch.record.trace import Trace
from hch.run import eager
from hch.run.ancestry import Ancestry
from hch.run.budget import SharedBudget
from hch.run.call_budget import Allowance, budget_place, check_budget, shares, unbounded_depth
from hch.run.call_cache import CallCache, call_key
from hch.run.collector import paced
from hch.run.facts import Facts, check_facts, sees_facts
from hch.run.pointers import Messages, PointerError, Pointers
from hch.run.pointers import check as check_pointers
from hch.run.policy import ChecksQuestions, Policy, as_reply, resolve
from hch.run.position import DEADLINE, POSITION, RUN, Position
from hch.run.progress import CURRENT as PROGRESS
from hch.run.progress import Progress
from hch.run.subtree_cache import SubtreeCache, SubtreeKey
from hch.validate import MAX_QUESTION_CHARS, action_problem, unicode_problem, valid_text
from hch.workspace import Answer, Ask, Expand, Reply, Status, SubAnswer, Usage, Workspace, normalize_question

ENVIRONMENT = "environment"
"""The `policy` of a workspace the task's environment answered (facts hidden): no policy call."""
Copies = Literal["merged", "independent"]
_NO_USAGE = Usage()  # compared against and dumped, never mutated


class _NodeError(Exception):
    """Ends one node in error; its parent goes on (unless the run fails fast)."""

    def __init__(self, message: str, limit: str | None = None, failed: PolicyError | None = None,
                 cause: BaseException | None = None) -> None:
        super().__init__(valid_text(message))  # it becomes the node's answer, which files must hold
        self.limit = limit
        self.failed = failed
        self.cause = cause
        """What the policy raised (chained as `NodeFailed.__cause__`; its traceback is in the trace)."""


@dataclass
class Result:
    """What a run produced."""

    answer: str
    """The root's answer (for an error, what failed)."""
    status: str
    """The root's status: ok, guess or error."""
    trace: Trace
    """Everything that happened."""
    summary: Summary
    """Headline figures."""
    trace_path: Path | None = None
    """Where the trace was written, if it was."""


class _Run:
    """One run's state: the policy, limits, caches and trace, and what has been spent so far."""

    def __init__(
        self,
        policy: Policy,
        context: str,
        limits: Limits,
        trace: Trace,
        call_cache: CallCache | None,
        subtrees: SubtreeCache,
        fail_fast: bool,
        facts: Facts = "shown",
        copies: Copies = "merged",
    ) -> None:
        self.policy, self.context, self.limits, self.trace = policy, context, limits, trace
        self.independent = copies == "independent"
        self.call_cache, self.subtrees, self.fail_fast = call_cache, subtrees, fail_fast
        self.hidden = facts == "hidden"
        self.visible = _visible_context(context) if self.hidden else context
        """What a policy is shown of the context (unless it `sees_facts`)."""
        self.context_hash = hashlib.sha256(context.encode()).hexdigest()[:16]
        self.t0 = anyio.current_time()
        self.deadline = self.t0 + limits.run_timeout if limits.run_timeout else math.inf
        # Trace timestamps: the monotonic clock asyncio's loop uses, read directly (anyio's
        # current_time() looks the backend up on every call, a measurable cost per node).
        self.began = time.monotonic()
        self.nodes = 0
        self.reserved = 0
        self.spent = Usage()
        self.shared: SharedBudget | None = None  # a budget shared with other runs (a sweep's)
        self.previous: dict[Place, tuple[int, str]] = {}  # ids an earlier session gave (see hch.record.stable_ids)
        self.places: dict[int, Place] = {}
        self._leaves: dict[tuple[int, bool], Policy] = {}
        self.progress = Progress()
        self.pointers: Pointers | None = None  # pointer mode (hch.run.pointers): the run's messages
        self.native = _under_asyncio()
        """Running under asyncio (not trio): subquestions run in asyncio's own task groups."""

    def clock(self) -> float:
        return time.monotonic() - self.began

    def context_for(self, leaf: Policy) -> str:
        """The context a policy is shown: the facts, or with facts hidden only their header."""
        return self.context if not self.hidden or sees_facts(leaf) else self.visible

    def told(self, node: int, question: str) -> SubAnswer | None:
        """With facts hidden, the environment's answer to a primitive question (recorded on `node`)."""
        if not self.hidden:
            return None
        from hch.tasks import oracle_answer

        found = oracle_answer(self.context, question)
        if found is None:
            return None
        self.trace.update_node(node, policy=ENVIRONMENT, oracle=True)
        self._finish(node, found, "ok", limit=None)
        return SubAnswer(question=question, answer=found, status="ok")

    def key(self, question: str, depth: int, root: bool, copy: str = "", given: int | None = None
            ) -> tuple[Policy, SubtreeKey]:
        leaf = self._leaves.get((depth, root))
        if leaf is None:  # a runtime protocol check costs ~10 µs: resolve each position once per run
            leaf = self._leaves[depth, root] = resolve(self.policy, depth, root)
        place = self.context_hash + "/" + copy if copy else self.context_hash  # a copy is its own subtree
        return leaf, (leaf.fingerprint, normalize_question(question), depth, budget_place(place, given))

    def child_copy(self, copy: str, step: int, order: int) -> str:
        """The copy id of subquestion `order` of step `step` asked by copy `copy` ("" when merged)."""
        if not self.independent:
            return ""
        return hashlib.sha256(f"{copy}\x00{step}\x00{order}".encode()).hexdigest()[:16]

    async def solve(
        self, question: str, depth: int, parent: tuple[int, int, int] | None, ancestors: Ancestry,
        copy: str = "", allowance: Allowance | None = None,
    ) -> SubAnswer:
        """Answer `question` as HCH_depth; `parent` is (node, step, order) of the asker, `copy` its copy id,
        `allowance` the policy calls it was given (budgeted runs; what it spends is taken from it)."""
        given = allowance.given if allowance is not None else None
        leaf, key = self.key(question, depth, root=parent is None, copy=copy, given=given)
        if parent is not None:
            self.reserved -= 1  # the asker reserved a node for this question in `refuse`
        while True:
            flight, owner = self.subtrees.claim(key)
            if owner:
                break
            await flight.done.wait()
            found = flight.result
            if found is not None and flight.node is not None and flight.trace is not None:
                if self.pointers is not None and flight.trace is not self.trace:  # its messages come along
                    self.pointers.messages.absorb(flight.trace.meta.get("messages", {}))
                target = flight.node if flight.trace is self.trace else self.trace.graft(flight.trace, flight.node)
                if allowance is not None:  # it spends what it spent when it was computed
                    allowance.left -= int(self.trace.graph.nodes[target].get("spent", 0))
                if parent is not None:
                    node, step, order = parent
                    self.trace.add_edge(node, target, "reuse", step=step, order=order, **_given(allowance, True))
                return found
        self.nodes += 1
        place, wanted = self._place(parent, key[1])
        node = self.trace.add_node(
            "workspace", wanted, question=question, depth=depth, policy=leaf.fingerprint, answer=None,
            status="running", started=self.clock(), ended=None,
            cycle_of=ancestors.get(key[1]), limit=None, error=None, oracle=False, **({"copy": copy} if copy else {}),
            **({"budget": given} if given is not None else {}),
        )
        self.progress.node_started()
        if place is not None:
            self.places[node] = place
        if parent is not None:
            asker, step, order = parent
            self.trace.add_edge(asker, node, "delegate", step=step, order=order, **_given(allowance, False))
        above = POSITION.get()  # still the asker's: this task was started from its node
        level = above.level + 1 if parent is not None and above is not None else 0
        token = POSITION.set(Position(node, level, *(parent or (None, None, None))))
        try:
            result = self.told(node, question)  # the environment's, with facts hidden: no policy call
            if result is None:
                result = await self.expand(
                    node, question, depth, leaf, ancestors.with_node(key[1], node), copy, allowance
                )
            if allowance is not None:
                self._settle(node, parent, allowance)
        except BaseException:
            if self.trace.nodes.get(node, {}).get("status") == "running":
                self.trace.update_node(node, status="interrupted", ended=self.clock())
            self.subtrees.abandon(key, flight)
            raise
        finally:
            POSITION.reset(token)
        self.subtrees.finish(flight, result, node, self.trace)
        return result

    def _place(self, parent: tuple[int, int, int] | None, question: str) -> tuple[Place | None, int | None]:
        """This workspace's place, and the id an earlier session gave the same question there (if any)."""
        if not self.previous:
            return None, None
        above = () if parent is None else self.places.get(parent[0])
        if above is None:
            return None, None
        place = above if parent is None else (*above, (parent[1], parent[2]))
        known = self.previous.get(place)
        return place, known[0] if known is not None and known[1] == question else None

    def _settle(self, node: int, parent: tuple[int, int, int] | None, allowance: Allowance) -> None:
        """Record what a budgeted node spent, and on its delegation edge what returns to the asker."""
        self.trace.update_node(node, spent=allowance.spent)
        if parent is not None:
            self.trace.update_edge(parent[0], node, returned=allowance.left)

    async def expand(
        self, node: int, question: str, depth: int, leaf: Policy, ancestors: Ancestry, copy: str = "",
        allowance: Allowance | None = None,
    ) -> SubAnswer:
        """The node's loop: act, and either answer or run this step's subquestions."""
        steps: list[tuple[SubAnswer, ...]] = []
        refusal: str | None = None
        refusals = 0
        limit: str | None = None
        view = self.pointers.view() if self.pointers is not None else None
        try:
            while True:
                context = self.context_for(leaf)
                if allowance is not None:  # every call costs one unit of the budget, a cached one too
                    if allowance.left < 1:
                        raise _NodeError(f"the budget is spent ({allowance.given} calls given) and the last "
                                         "action was not an answer", "budget")
                    allowance.left -= 1
                workspace = Workspace(
                    question=question, depth=depth, context=context if view is None else self.pointers.context(context),  # type: ignore[union-attr]
                    steps=tuple(steps), max_asks=self.limits.max_asks_per_step,
                    steps_left=self.limits.max_steps_per_node - len(steps), refusal=refusal, copy=copy,
                    budget=allowance.left if allowance is not None else None,
                )
                workspace = workspace if view is None else view.show(workspace)  # pointers named $1, $2, ...
                action: Answer | Ask | Expand | None = (await self.call(node, leaf, workspace)).action
                hit = None
                if view is not None:  # pointers to the run's; an expansion is carried out here (None)
                    action, refusal = view.take(action, len(steps))  # type: ignore[arg-type]
                elif isinstance(action, Expand):
                    refusal = "this run has no pointers to expand (pointer mode is off); ask or answer"
                if isinstance(action, Answer):
                    status: Status = "guess" if action.guess else "ok"
                    self._finish(node, action.answer, status, limit=limit)
                    return SubAnswer(question=question, answer=action.answer, status=status)
                if isinstance(action, Ask):
                    refusal, hit = self.refuse(workspace, action)
                if refusal is not None:
                    limit = hit or limit
                    refusals += 1
                    if refusals > self.limits.max_refusals:
                        raise _NodeError(f"{refusals} actions refused; last: {refusal}", limit)
                    continue
                if isinstance(action, Ask):
                    children = _give(allowance, action)
                    answers = await self.ask_all(
                        node, len(steps), action.questions, depth - 1, ancestors, copy, children
                    )
                    steps.append(answers if view is None else view.settle(answers))
                    if allowance is not None and children is not None:  # what the subtrees did not spend returns
                        allowance.left += sum(child.left for child in children)
        except _NodeError as exc:
            message = f"error: {exc}"
            self._finish(node, message, "error", limit=exc.limit or limit, error=str(exc))
            if self.fail_fast:
                raise NodeFailed(f"node {node} ({question!r}) failed: {exc}") from exc.cause
            return SubAnswer(question=question, answer=message, status="error")
        finally:
            if view is not None:  # pointer mode: the node's pointers and what it expanded
                self.trace.update_node(node, **view.record())

    def _finish(self, node: int, answer: str, status: str, limit: str | None, error: str | None = None) -> None:
        self.trace.update_node(node, answer=answer, status=status, ended=self.clock(), limit=limit, error=error)
        self.progress.node_ended()

    def refuse(self, workspace: Workspace, ask: Ask) -> tuple[str | None, str | None]:
        """Why an ask cannot be carried out (and the limit it hit), or (None, None)."""
        questions = ask.questions
        if workspace.depth <= 0:
            return "at depth 0 you cannot ask subquestions; answer with your best guess", None
        if workspace.steps_left <= 0:
            steps = self.limits.max_steps_per_node
            return f"no steps left (max_steps_per_node={steps}); answer now", "max_steps_per_node"
        if len(questions) > workspace.max_asks:
            return (
                f"one step may ask at most {workspace.max_asks} subquestions, not {len(questions)}",
                "max_asks_per_step",
            )
        if any(not q.strip() for q in questions):
            return "a subquestion is empty; ask real questions or answer", None
        given = shares(ask.budgets, len(questions), workspace.budget) if workspace.budget is not None else None
        if isinstance(given, str):
            return given, "budget"
        step, below = self.limits.max_steps_per_node - workspace.steps_left, workspace.depth - 1  # the step's index
        fresh = sum(
            self.key(q, below, False, self.child_copy(workspace.copy, step, order), given[order] if given else None)[1]
            not in self.subtrees
            for order, q in enumerate(questions)
        )
        if self.nodes + self.reserved + fresh > self.limits.max_nodes:
            return f"the run's node budget is spent (max_nodes={self.limits.max_nodes}); answer now", "max_nodes"
        self.reserved += len(questions)
        return None, None

    async def ask_all(
        self, node: int, step: int, questions: list[str], depth: int, ancestors: Ancestry, copy: str = "",
        allowances: list[Allowance] | None = None,
    ) -> tuple[SubAnswer, ...]:
        answers: list[SubAnswer | None] = [None] * len(questions)

        async def one(order: int, question: str) -> None:
            child = self.child_copy(copy, step, order)
            allowance = allowances[order] if allowances is not None else None
            answers[order] = await self.solve(question, depth, (node, step, order), ancestors, child, allowance)

        if self.native:  # asyncio's own task group: the same structure at half the cost of anyio's
            async with asyncio.TaskGroup() as tasks:
                for order, question in enumerate(questions):
                    eager.create_task(tasks, one(order, question))  # depth first (see hch.run.eager)
        else:
            async with anyio.create_task_group() as group:
                for order, question in enumerate(questions):
                    group.start_soon(one, order, question)
        return tuple(a for a in answers if a is not None)

    async def call(self, node: int, leaf: Policy, workspace: Workspace) -> Reply:
        """One policy call, served from the call cache when it was made before."""
        key = call_key(leaf.fingerprint, workspace) if self.call_cache is not None else ""
        entry = self.call_cache.entry(key) if self.call_cache is not None else None
        if entry is not None:
            cached, original = entry  # the latency the call had when it was made (None if not recorded)
            self._record_call(
                node, leaf, workspace, cached, latency=0.0, cached=True, started=self.clock(), original=original
            )
            self.progress.cache_hit()
            return cached
        self._check_budget()
        started = self.clock()
        begin = time.perf_counter()
        self.progress.call_started()
        try:
            reply = await self._timed_act(leaf, workspace)
        except (_NodeError, RunAborted) as exc:
            failed = exc if isinstance(exc, RunAborted) else exc.failed
            self._spend(failed.usage if failed is not None and failed.usage else Usage())
            self._record_call(
                node, leaf, workspace, None, time.perf_counter() - begin, False, started, str(exc), failed,
                cause=exc.cause if isinstance(exc, _NodeError) else None,
            )
            if isinstance(exc, Stopped):  # the person acting as H stopped the run: not a failure
                self.trace.update_node(node, status="interrupted", ended=self.clock())
            elif isinstance(exc, RunAborted):
                self._finish(node, f"error: {exc}", "error", limit=None, error=str(exc))
            raise
        finally:
            self.progress.call_ended()
        latency = time.perf_counter() - begin
        if _spent(reply.usage):
            self._spend(reply.usage)
        self._record_call(node, leaf, workspace, reply, latency, cached=False, started=started)
        if self.call_cache is not None:
            self.call_cache.put(key, leaf.fingerprint, reply, latency)
        return reply

    async def _timed_act(self, leaf: Policy, workspace: Workspace) -> Reply:
        """The policy's action, within the per-call (node) and run deadlines."""
        if self.limits.node_timeout is None and self.deadline == math.inf:
            return await self._act(leaf, workspace)  # no deadline: spare the cancel scope
        own = anyio.current_time() + self.limits.node_timeout if self.limits.node_timeout else math.inf
        which = "run_timeout" if own >= self.deadline else "node_timeout"
        token = DEADLINE.set(min(own, self.deadline))  # for a person at the prompt: a countdown
        try:
            with anyio.move_on_after(min(own, self.deadline) - anyio.current_time()) as scope:
                return await self._act(leaf, workspace)
        finally:
            DEADLINE.reset(token)
        assert scope.cancelled_caught
        raise _NodeError(f"{which.replace('_', ' ')} reached", which)

    @staticmethod
    async def _act(leaf: Policy, workspace: Workspace) -> Reply:
        try:
            reply = as_reply(await leaf.act(workspace))
        except RunAborted:
            raise  # the policy cannot work at all: stop the run rather than fail every node
        except PolicyError as exc:
            raise _NodeError(str(exc), failed=exc, cause=exc) from None
        except Exception as exc:  # a policy bug or failure must not sink the whole run
            raise _NodeError(f"policy raised {type(exc).__name__}: {exc}", cause=exc) from None
        if (problem := action_problem(reply.action, workspace.max_asks)) is not None:  # before it is recorded
            raise _NodeError(f"the policy's action cannot be used: {problem}")
        return reply

    def _check_budget(self) -> None:
        """Refuse a new call once the run's time, token or money budget is spent."""
        limits = self.limits
        if self.deadline != math.inf and anyio.current_time() >= self.deadline:
            raise _NodeError("run timeout reached", "run_timeout")
        if limits.max_total_tokens is not None and self.spent.total_tokens >= limits.max_total_tokens:
            raise _NodeError(f"token budget spent (max_total_tokens={limits.max_total_tokens})", "max_total_tokens")
        if limits.max_cost is not None and self.spent.cost >= limits.max_cost:
            raise _NodeError(f"cost budget spent (max_cost={limits.max_cost})", "max_cost")
        hit = self.shared.exhausted() if self.shared is not None else None
        if hit is not None:
            raise _NodeError(*hit)

    def _spend(self, usage: Usage) -> None:
        self.spent = self.spent + usage
        if self.shared is not None:
            self.shared.add(usage)

    def _record_call(
        self, node: int, leaf: Policy, workspace: Workspace, reply: Reply | None,
        latency: float, cached: bool, started: float, error: str | None = None,
        failed: PolicyError | None = None, cause: BaseException | None = None, original: float | None = None,
    ) -> None:
        """Record a call; a failed one keeps what the policy reported spending (usage, attempts) and,
        for an exception other than a `PolicyError` (a bug in the policy), its formatted traceback.
        A cache hit has latency 0 here and keeps the `original_latency` of the call that was made."""
        if reply is not None:
            usage = reply.usage
        else:
            usage = failed.usage if failed is not None and failed.usage is not None else _NO_USAGE
        call = self.trace.add_node(
            "call", workspace=node, policy=leaf.fingerprint,
            input=workspace.model_dump(exclude={"context"}),
            output=reply.action.model_dump() if reply else None,
            usage=usage.model_dump(), latency=latency, cached=cached,
            started=started, raw=reply.raw if reply else (failed.raw if failed else None),
            attempts=reply.attempts if reply else (failed.attempts if failed else []), error=error,
            error_traceback=_traceback(cause),
            invocations=reply.invocations if reply else (failed.invocations if failed is not None else 1),
            original_latency=original,
        )
        self.trace.add_edge(node, call, "call")


async def answer(
    question: str,
    *,
    depth: int | None = None,
    policy: Policy | str | PolicyFunction | None = None,
    context: str = "",
    limits: Limits | None = None,
    call_cache: CallCache | None = None,
    subtree_cache: SubtreeCache | None = None,
    trace_path: str | Path | None = None,
    fail_fast: bool = False,
    trace: Trace | None = None,
    meta: dict[str, Any] | None = None,
    facts: Facts = "shown",
    copies: Copies = "merged",
    progress: Progress | None = None,
    budget: int | SharedBudget | None = None,
    shared_budget: SharedBudget | None = None,
    keep_trace: bool = True,
) -> Result:
    """Answer `question` with HCH_depth under `policy` (default: the offline expert).

    `policy` is a policy object, a spec string as `--policy` takes ("expert", "vote(3, expert)"),
    or a plain (async) function of the workspace (see `hch.policies.callable.from_function`).

    `facts="hidden"` (the 2018 paper's environment) shows a policy only the context's header line
    (policies with `sees_facts = True` still see it all) and has the task's environment answer
    its primitive questions; the context must then be a task's facts.

    `copies`: "merged" (identical subquestions under one context share one subtree, and a policy
    call is made once per distinct workspace) or "independent" (each node is its own copy of H, with
    an opaque `Workspace.copy` id hashed from its asker's and the (step, order) of its ask, the root's
    from the question; identical subquestions at different places are separate copies, sampled apart,
    each cached under its own key so reruns reproduce them).

    The trace is written to `trace_path` (if given) even when the run is interrupted; the path is
    claimed when the run starts (a path a live run holds is refused). `progress` receives live
    counters (nodes, calls in flight, retries) as the run goes. `shared_budget`, a spend budget shared with
    other runs (a sweep's), refuses calls once spent, like the run's own limits (`budget=` takes one too).

    `budget=N` (an int) makes the run budgeted HCH (`hch.run.call_budget`): at most N policy calls in all,
    each node shown the calls it has left and giving its subquestions shares of them. `depth` is then an
    optional extra bound: without it, depth is unbounded (recorded as depth N, which no chain reaches).

    `keep_trace=False` (with `trace_path`) streams the trace: each record goes to the file and is let go
    once final, so memory follows the work in flight, not the nodes recorded (a 10^6-node run); the
    result's trace then holds only the metadata (`hch.load_trace(trace_path)` reads the rest). Such a
    run keeps its subtree cache to itself (another run could not copy a subtree from it).
    """
    if isinstance(budget, SharedBudget):
        budget, shared_budget = None, budget
    budget = check_budget(budget)
    if depth is None:
        if budget is None:
            raise TypeError("answer() needs depth= (or budget=N, which may leave depth unbounded)")
        depth = unbounded_depth(budget)
    facts = check_facts(facts)
    if copies not in ("merged", "independent"):
        raise ValueError(f"copies must be 'merged' or 'independent', not {copies!r}")
    if not isinstance(question, str) or not isinstance(context, str):
        raise TypeError(f"the question and the context must be strings, not {question!r} and {context!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or not isinstance(limits, Limits | None):
        raise TypeError(f"depth must be an int and limits a hch.Limits, not {depth!r} and {limits!r}")
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, not {depth}")
    if not question.strip():
        raise QuestionError("the question is empty")
    for name, text in (("question", question), ("context", context)):
        if (problem := unicode_problem(text)) is not None:
            raise QuestionError(f"the {name} is not valid text: {problem}")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question is {len(question)} characters long; at most {MAX_QUESTION_CHARS} are accepted"
        )
    if policy is None:
        from hch.experts import ExpertPolicy

        policy = ExpertPolicy()
    elif not isinstance(policy, Policy):
        if isinstance(policy, str):
            meta = {"policy_spec": policy, **(meta or {})}
        policy = as_policy(policy)
    root_policy = resolve(policy, depth, root=True)  # for a positional policy, the part at the root
    shown = _visible_context(context) if facts == "hidden" and not sees_facts(root_policy) else context
    limits = limits or Limits()
    pointers, asked = _pointers(limits, question, (shown, context))  # pointer mode: `asked` holds the run's pointers
    if isinstance(root_policy, ChecksQuestions) and not (facts == "hidden" and _oracle_answers(context, question)):
        _check(root_policy, question, shown, pointers)
    trace = trace or Trace()
    trace.meta.update(
        question=question, depth=depth, policy=policy.fingerprint, context=context,
        limits=limits.model_dump(), started_at=datetime.now(UTC).isoformat(),
        hch_version=_version(), status="running", facts=facts, copies=copies, **(meta or {}),
        **({"budget": budget} if budget is not None else {}),
    )
    if pointers is not None:  # the trace holds every message (a dict the run keeps adding to)
        trace.meta["messages"] = pointers.messages.table
    if not keep_trace and (trace_path is None or subtree_cache is not None):
        raise ValueError("keep_trace=False needs a trace_path and the run's own subtree cache")
    earlier = previous_ids(Path(trace_path), question, depth, policy.fingerprint, context) if trace_path else {}
    journal = open_journal(trace_path, trace) if trace_path is not None else None  # claims the path
    if journal is not None:  # the trace file, written as the run goes
        trace.sinks.append(journal)
    if not keep_trace:
        trace.stream(Tally())
    # `is None`, not `or`: an empty shared cache has len() 0 and must still be the one used
    subtrees = subtree_cache if subtree_cache is not None else SubtreeCache()
    run = _Run(policy, context, limits, trace, call_cache, subtrees, fail_fast, facts, copies)
    run.pointers = pointers
    run.progress = progress if progress is not None else run.progress
    reporting = PROGRESS.set(run.progress)  # policies report retries and waits to it
    naming = RUN.set(str(trace_path) if trace_path is not None else uuid.uuid4().hex)  # the tree, for hch serve
    run.shared = shared_budget
    if earlier and not any(True for _ in trace.workspaces()):  # a resumed session: keep the ids shown before
        run.previous = earlier
        trace.reserve(max(node for node, _ in earlier.values()))
    began = time.perf_counter()
    result: SubAnswer | None = None
    # paced: the collector would otherwise re-walk the growing trace while it runs and is saved
    with paced():
        try:
            copy = root_copy(question) if copies == "independent" else ""
            result = await run.solve(asked, depth, None, Ancestry(), copy, Allowance.of(budget))
            if pointers is not None:  # the user reads the answer with its pointers resolved
                result = result.model_copy(update={"answer": pointers.messages.resolve(result.answer)})
        except BaseException as exc:
            failed = _node_failure(exc)
            if failed is not None:
                trace.meta["error"] = str(failed)
                raise failed from failed.__cause__  # a policy's own exception stays chained
            raise
        finally:
            PROGRESS.reset(reporting)
            RUN.reset(naming)
            if call_cache is not None:
                call_cache.flush()
            summary = summarize(trace, wall_time=time.perf_counter() - began)
            trace.meta.update(
                summary=summary.model_dump(),
                status=result.status if result else "interrupted",
                answer=result.answer if result else None,
            )
            saved = None
            if journal is not None and trace_path is not None:
                trace.sinks.remove(journal)
                try:  # the end record, and the journal becomes the trace file (one rename)
                    saved = journal.finish(trace.meta, trace_path)
                finally:
                    journal.close()
    assert result is not None
    return Result(result.answer, result.status, trace, summary, saved)


def root_copy(question: str) -> str:
    """The copy id of a run's root under `copies=\"independent\"`: fixed by the question, so reruns make the
    same copies, while runs of different questions (e.g. in one sweep) are different copies of H."""
    return hashlib.sha256(("root\x00" + normalize_question(question)).encode()).hexdigest()[:16]


def answer_sync(
    question: str,
    *,
    depth: int | None = None,
    policy: Policy | str | PolicyFunction | None = None,
    context: str = "",
    limits: Limits | None = None,
    call_cache: CallCache | None = None,
    subtree_cache: SubtreeCache | None = None,
    trace_path: str | Path | None = None,
    fail_fast: bool = False,
    trace: Trace | None = None,
    meta: dict[str, Any] | None = None,
    facts: Facts = "shown",
    copies: Copies = "merged",
    progress: Progress | None = None,
    budget: int | SharedBudget | None = None,
    shared_budget: SharedBudget | None = None,
    keep_trace: bool = True,
) -> Result:
    """`answer` for code that is not async: runs its own event loop (so not inside one: in a
    Jupyter notebook or other async code, `await hch.answer(...)` instead)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "hch.answer_sync cannot run inside a running event loop (a Jupyter notebook, async code): "
            "use `await hch.answer(...)` there"
        )
    return anyio.run(lambda: answer(
        question, depth=depth, policy=policy, context=context, limits=limits, call_cache=call_cache,
        subtree_cache=subtree_cache, trace_path=trace_path, fail_fast=fail_fast, trace=trace, meta=meta,
        facts=facts, copies=copies, progress=progress, budget=budget, shared_budget=shared_budget,
        keep_trace=keep_trace,
    ))


def _give(allowance: Allowance | None, ask: Ask) -> list[Allowance] | None:
    """The allowances of an accepted ask's subquestions, taken from the asker's (budgeted runs only)."""
    if allowance is None:
        return None
    given = shares(ask.budgets, len(ask.questions), allowance.left)
    assert not isinstance(given, str)  # `refuse` let the ask through
    allowance.left -= sum(given)
    return [Allowance(share, share) for share in given]


def _given(allowance: Allowance | None, reused: bool) -> dict[str, int]:
    """A delegation edge's budget attributes: given (and, for a reused subtree, known at once, returned)."""
    if allowance is None:
        return {}
    return {"budget": allowance.given, "returned": allowance.left} if reused else {"budget": allowance.given}


def _spent(usage: Usage) -> bool:
    """Whether a call reported any spending (a field-by-field test: cheaper than comparing models)."""
    return bool(usage.prompt_tokens or usage.completion_tokens or usage.cached_tokens or usage.cost)


def _under_asyncio() -> bool:
    """Whether the running event loop is asyncio's (anyio also runs on trio)."""
    try:
        return asyncio.current_task() is not None
    except RuntimeError:
        return False


def _traceback(cause: BaseException | None) -> str | None:
    """The formatted traceback of an exception a policy raised, kept in the trace (a `PolicyError`
    is a reported failure, not a bug: its message says it all)."""
    if cause is None or isinstance(cause, PolicyError):
        return None
    return "".join(traceback.format_exception(cause))


def _node_failure(exc: BaseException) -> HchError | None:
    """The `NodeFailed` or `RunAborted` inside a (possibly nested) exception group, if any."""
    if isinstance(exc, (NodeFailed, RunAborted)):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _node_failure(inner)
            if found is not None:
                return found
    return None


def _pointers(limits: Limits, question: str, contexts: tuple[str, str]) -> tuple[Pointers | None, str]:
    """Pointer mode's store (None when off) and the root question with its `[[...]]` made messages."""
    if not limits.pointers:
        return None, question
    messages = Messages()
    try:
        asked = messages.outside(question)
        for context in contexts:  # what a policy may be shown of the context: checked here, made messages later
            Messages().outside(context)
    except PointerError as exc:
        raise QuestionError(f"pointer mode: {exc}") from None
    return Pointers(messages, limits.bandwidth), asked


def _check(policy: ChecksQuestions, question: str, shown: str, pointers: Pointers | None) -> None:
    """The root policy's up-front check (in pointer mode, see `hch.run.pointers.check`)."""
    if pointers is None:
        policy.check(question, shown)
    else:
        check_pointers(policy, question, shown)


def _visible_context(context: str) -> str:
    from hch.tasks import visible_context

    return visible_context(context)


def _oracle_answers(context: str, question: str) -> bool:
    from hch.tasks import oracle_answer

    return oracle_answer(context, question) is not None


def _version() -> str:
    from hch import __version__

    return __version__
