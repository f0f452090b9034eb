from __future__ import annotations

import pytest
from helpers import FunctionPolicy

import hch
from hch.policies.llm import LLMPolicy
from hch.policies.positional import PositionalPolicy
from hch.policies.vote import vote
from hch.run.budget import SharedBudget, unpriced_models
from hch.workspace import Answer, Ask, Reply, Usage, Workspace


def test_the_budget_is_spent_once_either_limit_is_reached() -> None:
    budget = SharedBudget(max_total_tokens=100, max_cost=1.0)
    assert budget.exhausted() is None
    budget.add(Usage(prompt_tokens=60, completion_tokens=39, cost=0.5))
    assert budget.exhausted() is None
    budget.add(Usage(completion_tokens=1))
    assert budget.exhausted() == (
        "the sweep's token budget is spent (max_total_tokens=100)", "sweep_max_total_tokens",
    )
    assert SharedBudget(max_cost=0.5, cost=0.5).exhausted() == (
        "the sweep's cost budget is spent (max_cost=0.5)", "sweep_max_cost",
    )
    assert SharedBudget().exhausted() is None
    with pytest.raises(ValueError, match="max_cost must be 0 or more"):
        SharedBudget(max_cost=-1)


@pytest.mark.anyio
async def test_runs_sharing_a_budget_stop_together_and_the_first_call_of_a_later_run_never_goes_out() -> None:
    async def behaviour(ws: Workspace) -> Reply:
        usage = Usage(prompt_tokens=10, cost=0.25)
        if ws.question.startswith("root") and not ws.steps:
            return Reply(action=Ask(questions=[f"a of {ws.question}", f"b of {ws.question}"]), usage=usage)
        return Reply(action=Answer(answer="x"), usage=usage)

    policy = FunctionPolicy(behaviour)
    budget = SharedBudget(max_cost=1.0)
    first = await hch.answer("root1", depth=1, policy=policy, budget=budget)  # 4 calls: $1.00, all of it
    assert first.status == "ok" and budget.cost == pytest.approx(1.0)
    second = await hch.answer("root2", depth=1, policy=policy, budget=budget)
    assert second.status == "error" and policy.calls["root2"] == 0  # refused before any call
    assert "sweep_max_cost" in second.summary.limits_hit


def test_models_without_a_price_are_found_inside_votes_and_positions() -> None:
    priced = LLMPolicy(model="a", base_url="http://127.0.0.1:9/v1", price="1,2")
    unpriced = LLMPolicy(model="b", base_url="http://127.0.0.1:9/v1")
    mixed = PositionalPolicy({"root": vote(3, unpriced), "else": priced})
    assert unpriced_models(mixed) == ["b"]
    assert unpriced_models(priced) == [] and unpriced_models(hch.ExpertPolicy()) == []
