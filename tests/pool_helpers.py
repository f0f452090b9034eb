"""Picklable policies and jobs for tests that run on worker processes (which import them by name)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio

from hch.experts import ExpertPolicy
from hch.run.call_cache import call_key
from hch.run.policy import as_reply
from hch.study.workers import CountedBudget, Env, worker_budget
from hch.workspace import Reply, Usage, Workspace


class Priced:
    """The offline expert, every call priced at 10 tokens and $0.01."""

    fingerprint = "priced-expert"

    def __init__(self) -> None:
        self.inner = ExpertPolicy()

    async def act(self, workspace: Workspace) -> Reply:
        reply = as_reply(await self.inner.act(workspace))
        return reply.model_copy(update={"usage": Usage(prompt_tokens=10, cost=0.01)})


class Spy:
    """The offline expert that appends the call key of every call it makes to `log` (from any process), and
    takes `pause` seconds a call: a call that slow is committed to the call cache at once."""

    fingerprint = "spy-expert"

    def __init__(self, log: Path, pause: float = 0.0) -> None:
        self.inner, self.log, self.pause = ExpertPolicy(), str(log), pause

    async def act(self, workspace: Workspace) -> Any:
        if self.pause:
            await anyio.sleep(self.pause)
        action = await self.inner.act(workspace)
        with open(self.log, "a", encoding="utf-8") as log:
            log.write(call_key(self.fingerprint, workspace) + "\n")
        return action


def double(job: int) -> tuple[int, int]:
    return job * 2, os.getpid()


def fail(job: int) -> int:
    raise ValueError(f"job {job} failed")


def die(job: int) -> int:
    os._exit(3)


def spend(env: Env) -> tuple[int, float]:
    """Add 5 tokens and $0.5 to the shared budget 10 times; what every worker has spent, as this one sees it."""
    budget = worker_budget(env)
    assert isinstance(budget, CountedBudget)
    for _ in range(10):
        budget.add(Usage(prompt_tokens=5, cost=0.5))
    budget.exhausted()
    return budget.tokens, budget.cost
