"""Depth sweeps: every question of a set at every depth, with accuracy, cost and time per depth.

All runs of a sweep share one subtree cache (`SweepCache`), so HCH_n's subtrees computed for one
depth serve the others, and the persistent call cache, so an interrupted sweep repeats no policy
call when rerun. Each finished run is appended to `runs.jsonl` in the output directory with its
trace under `traces/`; a rerun skips the runs found there and re-primes the subtree cache from
their traces.

A sweep's `max_total_tokens` / `max_cost` bound the whole sweep (one `SharedBudget` for all its runs):
once spent, no run and no call starts. A run cut short by it is recorded unfinished (its spend counts,
its answer does not) and a resumed sweep, which recomputes what was spent from `runs.jsonl`, runs it
again within what is left.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import networkx as nx
from pydantic import BaseModel, Field, ValidationError

from hch.errors import HchError, QuestionError, read_text
from hch.files import open_append, write_atomic
from hch.limits import Limits
from hch.record import format as trace_format
from hch.record.trace import Trace
from hch.run.budget import SharedBudget
from hch.run.call_budget import unbounded_depth
from hch.run.call_cache import CallCache
from hch.run.engine import Result, answer
from hch.run.facts import Facts, sees_facts
from hch.run.pointers import check as check_pointers
from hch.run.policy import ChecksQuestions, Policy, resolve
from hch.study.grading import grade
from hch.study.question_set import Item
from hch.study.sweep_cache import SweepCache, stable_fingerprints
from hch.tasks import oracle_answer, visible_context

if TYPE_CHECKING:
    from hch.study.workers import Pool

RUNS_FILE = "runs.jsonl"
CONFIG_FILE = "config.json"
PACKAGES = ("anyio", "pydantic", "networkx", "numpy", "click", "rich", "matplotlib", "openai", "tenacity")


class SweepError(HchError):
    """A sweep cannot start or continue (e.g. its output directory holds a different sweep)."""


class SweepConfig(BaseModel):
    """Everything that determines a sweep's results, written with them."""

    source: str
    """`task:NAME` or the question file's path."""
    task: str | None = None
    """The built-in task, if the questions were generated."""
    questions: int
    """How many questions."""
    seed: int | None = None
    """The generator's seed (tasks); the noisy expert takes its own in the policy spec."""
    depths: list[int]
    """The depths every question is run at."""
    policy: str
    """The policy spec."""
    votes: list[int] = Field(default_factory=lambda: [1])
    """Numbers of voting copies; 1 is the policy itself, k > 1 is `vote(k, policy)`."""
    concurrency: int = 8
    """Questions run at the same time at most."""
    limits: Limits = Field(default_factory=Limits)
    """Limits of every run."""
    copies: Literal["merged", "independent"] = "merged"
    """Whether identical subquestions at different places share one copy of H or are independent copies."""
    max_total_tokens: int | None = Field(default=None, ge=0)
    """Tokens the whole sweep may spend (all runs together, resumed invocations included)."""
    max_cost: float | None = Field(default=None, ge=0)
    """US dollars the whole sweep may spend (all runs together, resumed invocations included)."""
    fingerprints: dict[str, str] = Field(default_factory=dict)
    """The fingerprint of each voting variant's policy."""
    items_digest: str = ""
    """A hash of the question set (questions, gold answers, contexts)."""
    facts: Facts = "shown"
    """`shown`: every node sees the task's facts; `hidden`: H sees only the task's header and the task's
    environment answers its primitive questions (the 2018 paper's setting)."""
    budgets: list[int] | None = Field(default=None, exclude_if=lambda value: value is None)
    """Budgeted HCH: the call budgets every question is run at (a sweep over budget); `depths` then holds
    at most one depth, the extra bound (none: depth unbounded). None: runs are not budgeted."""

    def points(self) -> list[tuple[int, int | None]]:
        """The (depth, budget) of every run of a question, largest first (their subtrees serve the others)."""
        if self.budgets is None:
            return [(depth, None) for depth in sorted(set(self.depths), reverse=True)]
        return [(self.depths[0] if self.depths else unbounded_depth(b), b) for b in sorted(set(self.budgets))[::-1]]

    def continues(self, previous: SweepConfig) -> bool:
        """Whether this sweep may add to `previous`'s output: the same questions, limits and copies mode, and the
        same policy for every number of votes both have (more depths or votes are fine)."""
        shared = set(self.fingerprints) & set(previous.fingerprints)
        same_policy = all(self.fingerprints[k] == previous.fingerprints[k] for k in shared) if shared else (
            self.policy == previous.policy
        )
        same_runs = (self.items_digest, self.limits, self.facts, self.copies, self.budgets is None) == (
            previous.items_digest, previous.limits, previous.facts, previous.copies, previous.budgets is None
        ) and (self.budgets is None or self.depths == previous.depths)
        return same_runs and same_policy

    def budget(self, tokens: int = 0, cost: float = 0.0) -> SharedBudget | None:
        """The sweep's shared budget with what was spent already, or None without one."""
        if self.max_total_tokens is None and self.max_cost is None:
            return None
        return SharedBudget(self.max_total_tokens, self.max_cost, tokens=tokens, cost=cost)


class RunRecord(BaseModel):
    """One question at one depth under one voting variant."""

    votes: int
    """Voting copies (1: the policy alone)."""
    policy: str
    """Fingerprint of the policy run."""
    id: str
    """The question's id."""
    depth: int
    """The n of HCH_n (a budget sweep without a depth bound: the budget, which no chain reaches)."""
    budget: int | None = Field(default=None, exclude_if=lambda value: value is None)
    """Budgeted HCH: the run's call budget (None: not budgeted)."""
    spent: int | None = Field(default=None, exclude_if=lambda value: value is None)
    """Budgeted HCH: the calls charged to the run's budget (its root's `spent`): every call of the tree, and a
    reused subtree's calls again for each copy that reused it, so it can exceed `calls`."""
    required_depth: int | None
    """The depth the question needs, when known."""
    instance: str | None = None
    """The task instance the question came from; None: the question is its own instance."""
    question: str
    gold: str | None
    answer: str
    status: str
    """The root's status: ok, guess or error."""
    correct: bool | None
    """Graded against the gold answer; None without one."""
    guess_on_path: bool
    """Whether a guess stands behind the answer: some workspace of the run's tree (the root, or one
    reachable from it through delegate or reuse edges, whose answer its asker saw) has status guess."""
    nodes: int
    """Workspaces in the run's tree (including subtrees reused from other runs)."""
    calls: int
    """Policy calls in the tree: what a standalone run with empty caches would make."""
    calls_made: int
    """Policy calls this sweep actually made for this run (after all caching)."""
    invocations: int
    """Base-policy invocations of every call in the tree (a vote of k: k per call): a standalone
    run's work."""
    invocations_made: int
    """Base-policy invocations this sweep actually made for this run (after all caching)."""
    call_cache_hits: int
    """Calls of this run served by the persistent call cache."""
    subtree_hits: int
    """Subquestions (and a root) answered by a subtree reused within or across runs."""
    tokens: int
    """Tokens of every call in the tree (a standalone, uncached run's spend)."""
    cost: float
    """US dollars of every call in the tree."""
    tokens_spent: int
    """Tokens this sweep actually spent on this run."""
    cost_spent: float
    """US dollars this sweep actually spent on this run."""
    wall_time: float
    """Seconds the run took here."""
    trace: str
    """The run's trace file, relative to the sweep's output directory."""
    finished: bool = True
    """False when the run was cut short (the sweep's budget ran out, or the sweep was interrupted): its
    spend counts towards the sweep's budget, its answer counts nowhere, and a resumed sweep runs it again."""


def guess_on_path(trace: Trace) -> bool:
    """Whether a workspace with status `guess` is the root or reachable from it by delegate or reuse
    edges: every sub-answer is shown to its asker, so each such workspace may have shaped the answer."""
    tree = nx.subgraph_view(trace.graph, filter_edge=lambda s, t: trace.graph.edges[s, t]["kind"] != "call")
    reached = nx.descendants(tree, trace.root) | {trace.root}
    return any(trace.graph.nodes[node].get("status") == "guess" for node in reached)


def figures(trace: Trace) -> dict[str, Any]:
    """Per-run counts from a trace; nodes marked `grafted` were computed in another run."""
    calls = [data for _, data in trace.calls()]
    own = [c for c in calls if not c.get("grafted")]
    edges = [(trace.graph.nodes[s], d) for s, _, d in trace.graph.edges(data=True)]
    reuses = sum(1 + d.get("repeats", 0) for src, d in edges if d["kind"] == "reuse" and not src.get("grafted"))
    reuses += sum(d.get("repeats", 0) for src, d in edges if d["kind"] == "delegate" and not src.get("grafted"))
    root_grafted = bool(trace.graph.nodes[trace.root].get("grafted"))

    def spend(subset: Iterable[dict[str, Any]]) -> tuple[int, float]:
        usages = [c.get("usage") or {} for c in subset]
        tokens = sum(int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0)) for u in usages)
        return tokens, sum(float(u.get("cost", 0.0)) for u in usages)

    tokens, cost = spend(calls)
    made = [c for c in own if not c.get("cached")]
    tokens_spent, cost_spent = spend(made)
    return {
        "nodes": sum(1 for _ in trace.workspaces()), "calls": len(calls),
        "calls_made": len(made), "call_cache_hits": len(own) - len(made),
        "invocations": sum(int(c.get("invocations", 1)) for c in calls),
        "invocations_made": sum(int(c.get("invocations", 1)) for c in made),
        "guess_on_path": guess_on_path(trace),
        "subtree_hits": reuses + root_grafted, "tokens": tokens, "cost": cost,
        "tokens_spent": tokens_spent, "cost_spent": cost_spent,
        "spent": trace.graph.nodes[trace.root].get("spent"),
    }


def record_of(result: Result, item: Item, depth: int, votes: int, policy: Policy, trace: str,
              budget: int | None = None) -> RunRecord:
    return RunRecord(
        votes=votes, policy=policy.fingerprint, id=item.id, depth=depth, budget=budget,
        required_depth=item.required_depth,
        instance=item.instance, question=item.question, gold=item.answer, answer=result.answer, status=result.status,
        correct=grade(result.answer, item.answer, item.grader, item.tolerance),
        wall_time=result.summary.wall_time, trace=trace, **figures(result.trace),
    )


def items_digest(items: list[Item]) -> str:
    payload = json.dumps([item.model_dump() for item in items], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def safe_name(text: str) -> str:
    """A folder name for a question id, distinct for distinct ids on any file system.

    Plain ids (lower-case letters, digits, `.`, `_`, `-`, not starting with `.`) are kept; any other
    (upper case, which case-insensitive file systems fold; `""`, `.`, `..`; separators) is made plain
    and suffixed with a hash of the id. `check_items` refuses the (astronomically unlikely) clash left.
    """
    name = re.sub(r"[^a-z0-9._-]", "_", text.lower())[:80].lstrip(".")
    if name == text and name:
        return name
    return f"{name or 'id'}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def trace_file(votes: int, item: Item, depth: int, budget: int | None = None) -> str:
    point = f"depth-{depth}" if budget is None else f"budget-{budget}-depth-{depth}"
    return f"traces/votes-{votes}/{safe_name(item.id)}/{point}.json"


RunKey = tuple[int, str, int, int | None]
"""(votes, question id, depth, budget) of a run."""


def load_runs(out: Path) -> dict[RunKey, RunRecord]:
    """Finished runs already recorded in `out` (a torn last line, from a hard kill, is dropped)."""
    path = out / RUNS_FILE
    if not path.exists():
        return {}
    done: dict[RunKey, RunRecord] = {}
    lines = read_text(path, "list of finished runs", SweepError).splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = RunRecord.model_validate(upgraded(json.loads(line), out))
        except (ValidationError, ValueError):
            if number == len(lines):
                continue
            raise SweepError(
                f"{path} line {number} is not a run record; move the directory aside or use another --out"
            ) from None
        if record.finished and (out / record.trace).exists():
            done[record.votes, record.id, record.depth, record.budget] = record
    return done


ADDED_FIGURES = ("invocations", "invocations_made", "guess_on_path")
"""Run-record fields newer than some recorded runs: such a run's are recomputed from its trace."""


def upgraded(data: Any, out: Path) -> Any:
    """A recorded run with the figures it lacks filled in from its trace (when that is there)."""
    if not isinstance(data, dict) or all(key in data for key in ADDED_FIGURES):
        return data
    trace = out / str(data.get("trace", ""))
    if not trace.is_file():
        return data
    found = figures(trace_format.load(trace))
    return {**{key: found[key] for key in ADDED_FIGURES}, **data}


def spent_in(out: Path) -> tuple[int, float]:
    """Tokens and dollars spent by every run recorded in `out`, finished or not."""
    path = out / RUNS_FILE
    tokens, cost = 0, 0.0
    if path.exists():
        for line in read_text(path, "list of finished runs", SweepError).splitlines():
            try:
                record = RunRecord.model_validate(upgraded(json.loads(line), out))
            except (ValidationError, ValueError):
                continue  # a torn last line (load_runs refuses any other)
            tokens, cost = tokens + record.tokens_spent, cost + record.cost_spent
    return tokens, cost


SHARED_LIMITS = ("sweep_max_total_tokens", "sweep_max_cost")


def cut_short(trace: Trace) -> bool:
    """Whether the sweep's shared budget refused a call of this run."""
    return any(data.get("limit") in SHARED_LIMITS for _, data in trace.workspaces())


def unfinished_record(trace: Trace, item: Item, depth: int, votes: int, policy: Policy, path: str,
                      budget: int | None = None) -> RunRecord:
    """What a run cut short spent (its answer, if any, is not a result)."""
    return RunRecord(
        votes=votes, policy=policy.fingerprint, id=item.id, depth=depth, budget=budget,
        required_depth=item.required_depth,
        instance=item.instance, question=item.question, gold=item.answer, answer="", status="error", correct=None,
        wall_time=0.0,
        trace=path, finished=False, **figures(trace),
    )


def first_failure(group: BaseExceptionGroup[BaseException]) -> HchError | None:
    """The `HchError` that ended a task group, if any: a `NodeFailed`, a `RunAborted` (e.g. a person
    quitting), or any other one-line error a run raised."""
    for inner in group.exceptions:
        if isinstance(inner, HchError):
            return inner
        if isinstance(inner, BaseExceptionGroup):
            found = first_failure(inner)
            if found is not None:
                return found
    return None


@dataclass
class Outcome:
    """What a sweep produced: every run of its configuration, and what this invocation did."""

    records: list[RunRecord]
    resumed: int
    """Runs found finished in the output directory and not run again."""
    ran: int
    """Runs made by this invocation."""
    cross_depth_hits: int
    """Subtrees copied from another depth instead of being expanded."""
    wall_time: float
    """Seconds this invocation took."""
    calls_made: int = 0
    """Policy calls this invocation made."""
    invocations_made: int = 0
    """Base-policy invocations this invocation made (a vote of k: k per call)."""
    not_run: int = 0
    """Runs not made (or cut short) because the sweep's budget was spent; a resumed sweep makes them."""
    spent: dict[str, float | None] | None = None
    """With a sweep budget: the budget and what was spent (`tokens`, `cost`) before and after this invocation."""


def check_items(items: list[Item], policies: dict[int, Policy], facts: Facts = "shown", pointers: bool = False) -> None:
    """Fail before any run if a policy cannot take one of the questions (or, with facts hidden, a
    question has no task's facts for the environment to answer from)."""
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise SweepError("question ids must be unique within a sweep")
    folders: dict[str, str] = {}
    for item in items:
        other = folders.setdefault(safe_name(item.id).casefold(), item.id)
        if other != item.id:
            raise SweepError(f"question ids {other!r} and {item.id!r} would share one trace folder; rename one")
    for policy in policies.values():
        leaf = resolve(policy, 0, True)
        for item in items:
            try:
                check_item(leaf, item, facts, pointers)
            except QuestionError as exc:
                raise SweepError(f"question {item.id}: {exc}") from None


def check_item(leaf: Policy, item: Item, facts: Facts, pointers: bool = False) -> None:
    """Raise `QuestionError` if `leaf` cannot take the item's question as the engine will show it."""
    if facts == "hidden":
        shown = visible_context(item.context)
        if oracle_answer(item.context, item.question) is not None:
            return  # the environment answers it: no policy is asked
        if not sees_facts(leaf):
            item = item.model_copy(update={"context": shown})
    if isinstance(leaf, ChecksQuestions) and pointers:  # the question as pointer mode shows it
        check_pointers(leaf, item.question, item.context)
    elif isinstance(leaf, ChecksQuestions):
        leaf.check(item.question, item.context)


def prepare(out: Path, config: SweepConfig) -> None:
    """Create the output directory, or check that it holds this same sweep."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / CONFIG_FILE
    previous = _previous(path, out, config)
    if previous is not None and not config.continues(previous):
        raise SweepError(
            f"{out} holds a different sweep (other questions, policy, limits or copies); "
            "use another --out or remove it"
        )
    write_atomic(path, config.model_dump_json(indent=2))


def _previous(path: Path, out: Path, config: SweepConfig) -> SweepConfig | None:
    """The configuration saved in `out`, or None for a new sweep.

    An empty file (torn by a crash while an older hch wrote it non-atomically) is rebuilt when every
    finished run in runs.jsonl is one of this sweep's (same questions and policies).
    """
    if not path.exists():
        return None
    text = read_text(path, "sweep configuration", SweepError)
    recover = f"if {out} holds this same sweep, delete {path} and rerun to resume; else use another --out"
    if not text.strip():
        if _runs_belong(out, config):
            return None
        raise SweepError(f"{path} is empty and {out / RUNS_FILE} holds runs of another sweep; use another --out")
    try:
        return SweepConfig.model_validate_json(text)
    except ValidationError:
        raise SweepError(f"{path} is not a sweep configuration (corrupt?): {recover}") from None


def _runs_belong(out: Path, config: SweepConfig) -> bool:
    """Whether every run recorded in `out` was made by the policies of the sweep `config` describes."""
    return all(config.fingerprints.get(str(r.votes)) == r.policy for r in load_runs(out).values())


@dataclass(frozen=True)
class Question:
    """One question of one voting variant, with the points left to run: (depth, budget or None), deepest
    (largest budget) first."""

    votes: int
    item: Item
    points: list[tuple[int, int | None]]


async def run_question(question: Question, policy: Policy, config: SweepConfig, out: Path,
                       call_cache: CallCache | None, cache: SweepCache, budget: SharedBudget | None, fail_fast: bool,
                       emit: Callable[[RunRecord], None]) -> int:
    """Run a question's points in turn (its deeper subtrees serve the shallower runs); `emit` every record,
    finished or cut short (an interrupted run's too: what it spent counts). Returns the runs not made."""
    votes, item, not_run = question.votes, question.item, 0
    for depth, calls in question.points:
        if budget is not None and budget.exhausted() is not None:
            not_run += 1  # no run starts once the budget is spent
            continue
        path, trace = trace_file(votes, item, depth, calls), Trace()
        try:
            result = await answer(
                item.question, depth=depth, policy=policy, context=item.context,
                limits=config.limits, call_cache=call_cache, subtree_cache=cache,
                trace_path=out / path, fail_fast=fail_fast, trace=trace, budget=calls, shared_budget=budget,
                facts=config.facts, copies=config.copies,
                meta={"sweep": {"id": item.id, "votes": votes, "gold": item.answer,
                                "required_depth": item.required_depth, "instance": item.instance}},
            )
        except BaseException:  # interrupted: what it spent still counts against the budget
            if any(True for _ in trace.workspaces()):
                emit(unfinished_record(trace, item, depth, votes, policy, path, calls))
            raise
        if budget is not None and cut_short(result.trace):
            not_run += 1
            emit(unfinished_record(result.trace, item, depth, votes, policy, path, calls))
            continue
        emit(record_of(result, item, depth, votes, policy, path, calls))
    return not_run


async def _here(questions: list[Question], config: SweepConfig, policies: dict[int, Policy], out: Path,
                call_cache: CallCache | None, cache: SweepCache, budget: SharedBudget | None, fail_fast: bool,
                emit: Callable[[RunRecord], None]) -> int:
    """Every question in this process, `config.concurrency` at once; returns the runs not made."""
    limiter = anyio.CapacityLimiter(config.concurrency)
    not_made: list[int] = []  # one count per question: `total += await ...` would lose the counts added meanwhile

    async def one(question: Question) -> None:
        async with limiter:
            not_made.append(await run_question(question, policies[question.votes], config, out, call_cache, cache,
                                               budget, fail_fast, emit))

    try:
        async with anyio.create_task_group() as group:
            for question in questions:
                group.start_soon(one, question)
    except BaseExceptionGroup as exc:
        failure = first_failure(exc)
        if failure is None:
            raise
        raise failure from None
    return sum(not_made)


async def run_sweep(
    items: list[Item],
    config: SweepConfig,
    policies: dict[int, Policy],
    out: Path,
    call_cache: CallCache | None = None,
    on_run: Callable[[RunRecord], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    fail_fast: bool = False,
    pilot: int | None = None,
    pool: Pool | None = None,
    remake: Callable[[], dict[int, Policy]] | None = None,
) -> Outcome:
    """Run every (variant, question, depth) not already finished in `out`; `policies` maps votes to policy.

    `on_plan(to_run, already_done)` is called once before the runs start, `on_run` after each.
    With `fail_fast`, the first failing node stops the whole sweep (finished runs are kept); a person
    quitting at the prompt stops it too (`Stopped`). `pilot` runs only the first N questions (at every
    depth), recorded like any run of this sweep. `config.max_total_tokens` / `max_cost` bound the whole
    sweep, including what earlier invocations spent in `out`.

    `pool` runs the questions on several processes or machines (`hch.study.workers`) with the same
    records, traces and resume as here; the policies go to the workers pickled, or are made there by
    `remake` (a picklable function, e.g. for an LLM policy whose client does not pickle).
    """
    began = anyio.current_time()
    check_items(items, policies, config.facts, config.limits.pointers)
    config = config.model_copy(update={
        "fingerprints": {str(k): p.fingerprint for k, p in policies.items()}, "items_digest": items_digest(items),
        "questions": len(items),
    })
    prepare(out, config)
    done = load_runs(out)
    points = config.points()  # deepest (largest budget) first: its subtrees serve the other runs
    stable = {k: stable_fingerprints(p, range(max(d for d, _ in points) + 1)) for k, p in policies.items()}
    wanted = {(k, item.id, d, b) for k in policies for item in items for d, b in points}
    resumed = [key for key in done if key in wanted]
    todo = [(k, item, [(d, b) for d, b in points if (k, item.id, d, b) not in done])
            for k in policies for item in items]
    todo = [entry for entry in todo if entry[2]]
    if pilot is not None:
        first = {item.id for item in items[:pilot]}
        todo = [entry for entry in todo if entry[1].id in first]
    before = spent_in(out)
    budget = config.budget(*before)
    # Finished runs re-prime the subtree cache, so the runs left reuse their subtrees as in one go; only
    # runs sharing a context (and a variant) with a run left can serve one.
    open_contexts = {(k, item.context) for k, item, _ in todo}
    context_of = {item.id: item.context for item in items}
    primers = [done[key] for key in resumed if stable[key[0]] and (key[0], context_of[key[1]]) in open_contexts]
    if on_plan is not None:
        on_plan(sum(len(d) for _, _, d in todo), len(resumed))
    new: list[RunRecord] = []
    with open_append(out / RUNS_FILE) as runs:  # a line torn by a kill is cut off, not glued to

        def emit(record: RunRecord) -> None:
            runs.write(record.model_dump_json() + "\n")
            runs.flush()
            if record.finished:
                new.append(record)
                if on_run is not None:
                    on_run(record)

        questions = [Question(votes, item, todo_points) for votes, item, todo_points in todo]
        if pool is None:
            cache = SweepCache(set().union(*stable.values()))
            for record in primers:
                cache.prime(trace_format.load(out / record.trace))
            not_run = await _here(questions, config, policies, out, call_cache, cache, budget, fail_fast, emit)
            hits = cache.cross_depth_hits
        else:
            from hch.study.sweep_jobs import on_pool  # the pool's modules load only when asked for

            not_run, hits = await on_pool(pool, questions, config, remake or policies, out, call_cache, budget,
                                          fail_fast, emit, stable, primers)
    records = {**{key: done[key] for key in resumed}, **{(r.votes, r.id, r.depth, r.budget): r for r in new}}
    order = {item.id: i for i, item in enumerate(items)}
    ordered = sorted(records.values(), key=lambda r: (r.votes, order[r.id], r.depth, r.budget or 0))
    spent = None
    if budget is not None:
        spent = {"max_total_tokens": config.max_total_tokens, "max_cost": config.max_cost, "tokens_before": before[0],
                 "cost_before": before[1], "tokens": budget.tokens, "cost": budget.cost}
    return Outcome(
        ordered, len(resumed), len(new), hits, anyio.current_time() - began,
        calls_made=sum(r.calls_made for r in new), invocations_made=sum(r.invocations_made for r in new),
        not_run=not_run, spent=spent,
    )


def versions() -> dict[str, str]:
    """hch, Python, platform and the main packages, for the record."""
    from hch import __version__

    found = {"hch": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
