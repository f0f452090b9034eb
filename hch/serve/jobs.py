"""The runs and sweeps a server drives: recorded in the state database, so a restarted server resumes them.

A job is an ask (one question, one tree) or a sweep (questions at depths, one tree each, through
`hch.study.sweep.run_sweep`). Its id is a hash of what it runs, so giving the same command again resumes
the job instead of adding one. A resumed job repeats no call that was answered: a participant's answer is
in the store (and the call cache), and each tree keeps its trace path, so workspaces keep their ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from hch.errors import HchError, NodeFailed, QuestionError, RunAborted
from hch.limits import Limits
from hch.policies.spec import make_policy
from hch.run.call_cache import CallCache
from hch.run.engine import answer
from hch.serve.desk import Desk
from hch.serve.store import Store
from hch.study.question_set import Item
from hch.validate import MAX_QUESTION_CHARS, unicode_problem

MAX_DEPTH = 100


@dataclass
class Job:
    """One ask or sweep of the server."""

    id: str
    kind: str
    """`ask` or `sweep`."""
    spec: dict[str, Any]
    """Everything needed to run it again (question or items, depth(s), policy spec, limits, options)."""
    status: str = "running"
    """`running`, `done` or `failed`."""
    outcome: str = ""
    """One line: the answer, or what failed, or how many runs were made."""
    trees: set[str] = field(default_factory=set)

    @property
    def title(self) -> str:
        if self.kind == "ask":
            return f"{self.spec['question']} (n={self.spec['depth']}, {self.spec['policy']})"
        config = self.spec["config"]
        return f"{len(self.spec['items'])} questions at depths {config['depths']} ({config['policy']})"


def job_id(kind: str, spec: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{kind[0]}-{digest}"


def check_question(question: Any, depth: Any) -> tuple[str, int]:
    """A question and depth from outside (the command line, the experimenter's form), or one-line `QuestionError`."""
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question is {len(question)} characters long; at most {MAX_QUESTION_CHARS} are accepted")
    if (problem := unicode_problem(question)) is not None:
        raise QuestionError(f"the question is not valid text: {problem}")
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH:
        raise QuestionError(f"the depth must be a whole number from 0 to {MAX_DEPTH}, not {depth!r}")
    return question, depth


class Jobs:
    """The server's jobs: made, recorded, run (each in its own task) and resumed."""

    def __init__(self, store: Store, desk: Desk, state: Path, call_cache: CallCache | None,
                 options: Mapping[str, Any], limits: Limits, fail_fast: bool = False) -> None:
        self.store, self.desk, self.state, self.call_cache = store, desk, state, call_cache
        self.options, self.limits, self.fail_fast = dict(options), limits, fail_fast
        self.jobs: dict[str, Job] = {}
        self.group: TaskGroup | None = None
        self.all_done = anyio.Event()
        self.running = 0
        self.launched: set[str] = set()
        desk.on_tree = self._tree_seen

    def resume(self) -> list[Job]:
        """The jobs a stopped server left unfinished, taken up again."""
        trees = self.store.trees()
        for row in self.store.jobs():
            job = Job(row["id"], row["kind"], row["spec"], row["status"], (row["outcome"] or {}).get("line", ""))
            job.trees = {tree["key"] for tree in trees if tree["job"] == job.id}
            if job.status == "running":
                self._build(job)  # a policy that cannot be built now is an error before anything starts
            self.jobs[job.id] = job
        finished = {tree for job in self.jobs.values() if job.status != "running" for tree in job.trees}
        self.desk.job_ended(finished)  # a workspace left open by a run that has finished is nobody's any more
        return [job for job in self.jobs.values() if job.status == "running"]

    def ask(self, question: str, depth: int, policy: str, context: str = "", facts: str = "shown",
            copies: str = "merged") -> Job:
        """An ask job (the one already recorded, if the same ask was given before)."""
        question, depth = check_question(question, depth)
        spec = {"question": question, "depth": depth, "policy": policy, "context": context, "facts": facts,
                "copies": copies, "limits": self.limits.model_dump(mode="json"), "options": self._options()}
        return self._add(Job(job_id("ask", spec), "ask", spec))

    def sweep(self, items: list[Item], config: Any) -> Job:
        """A sweep job over `items` with a `hch.study.sweep.SweepConfig`."""
        spec = {"items": [item.model_dump(mode="json") for item in items], "config": config.model_dump(mode="json"),
                "options": self._options()}
        return self._add(Job(job_id("sweep", spec), "sweep", spec))

    def _options(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if v is not None}

    def _add(self, job: Job) -> Job:
        known = self.jobs.get(job.id)
        if known is not None:
            return known
        self._build(job)
        self.store.add_job(job.id, job.kind, job.spec)
        self.jobs[job.id] = job
        if job.kind == "ask":
            self._tree(self.trace_path(job), job, job.spec["question"])
        return job

    def _build(self, job: Job) -> Any:
        """The job's policy (or policies, by votes); builds it to check it can be built."""
        if job.kind == "ask":
            return make_policy(job.spec["policy"], job.spec.get("options", {}))
        from hch.policies.vote import vote

        base = make_policy(job.spec["config"]["policy"], job.spec.get("options", {}))
        return {k: vote(k, base) for k in job.spec["config"].get("votes", [1])}

    def trace_path(self, job: Job) -> Path:
        return self.state / "traces" / f"{job.id}.json"

    def out(self, job: Job) -> Path:
        return self.state / "sweeps" / job.id

    def _tree(self, key: Path | str, job: Job, label: str) -> None:
        job.trees.add(str(key))
        self.store.add_tree(str(key), job.id, label)

    def _tree_seen(self, key: str) -> None:
        path = Path(key)
        for job in self.jobs.values():
            if job.kind == "sweep" and self.out(job) in path.parents:
                self._tree(key, job, path.stem)
                return

    def start(self, group: TaskGroup, jobs: list[Job]) -> None:
        self.group = group
        for job in jobs:
            self.launch(job)
        if self.running == 0:
            self.all_done.set()

    def launch(self, job: Job) -> None:
        """Run `job` in its own task, once (the same job given twice runs once)."""
        assert self.group is not None
        if job.id in self.launched:
            return
        if self.all_done.is_set():
            self.all_done = anyio.Event()
        self.running += 1
        self.launched.add(job.id)
        self.group.start_soon(self._run, job)

    async def _run(self, job: Job) -> None:
        try:
            if job.kind == "ask":
                await self._run_ask(job)
            else:
                await self._run_sweep(job)
        except (NodeFailed, RunAborted, HchError) as exc:
            job.status, job.outcome = "failed", " ".join(str(exc).split())
        except Exception as exc:  # a bug in one job must not stop the server and the other jobs
            job.status, job.outcome = "failed", f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"
        self.store.end_job(job.id, job.status, {"line": job.outcome})
        self.desk.job_ended(job.trees)
        self.running -= 1
        if self.running == 0:
            self.all_done.set()

    async def _run_ask(self, job: Job) -> None:
        spec = job.spec
        result = await answer(
            spec["question"], depth=spec["depth"], policy=self._build(job), context=spec["context"],
            limits=Limits.model_validate(spec["limits"]), call_cache=self.call_cache, trace_path=self.trace_path(job),
            fail_fast=self.fail_fast, facts=spec["facts"], copies=spec["copies"],
            meta={"policy_spec": spec["policy"], "serve_job": job.id},
        )
        job.status = "failed" if result.status == "error" else "done"
        job.outcome = f"{result.status}: {result.answer}"

    async def _run_sweep(self, job: Job) -> None:
        from hch.study.report import write_outputs
        from hch.study.sweep import SweepConfig, run_sweep

        items = [Item.model_validate(item) for item in job.spec["items"]]
        config = SweepConfig.model_validate(job.spec["config"])
        outcome = await run_sweep(items, config, self._build(job), self.out(job), self.call_cache,
                                  fail_fast=self.fail_fast)
        write_outputs(self.out(job), config, outcome, plot=False)
        failed = sum(record.status == "error" for record in outcome.records)
        job.status = "failed" if failed else "done"
        job.outcome = f"{len(outcome.records)} runs ({outcome.resumed} resumed), {failed} failed: {self.out(job)}"

    def view(self) -> list[dict[str, Any]]:
        return [{"id": job.id, "kind": job.kind, "title": job.title, "status": job.status, "outcome": job.outcome}
                for job in self.jobs.values()]

    def failed(self) -> int:
        return sum(job.status == "failed" for job in self.jobs.values())
