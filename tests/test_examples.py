from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import anyio
import pytest

from hch.record.format import load
from hch.review.diff import diff
from hch.review.replay import replay

EXAMPLES = Path(__file__).resolve().parent.parent / "traces" / "examples"
COMMITTED = sorted(EXAMPLES.glob("*.json"))


def regenerate_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("regenerate", EXAMPLES / "regenerate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_committed() -> None:
    names = {path.stem for path in COMMITTED}
    assert names == set(regenerate_module().EXAMPLES)


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_replay_reproduces_every_committed_example(path: Path) -> None:
    recorded = load(path)
    report, _ = anyio.run(replay, recorded)
    assert report.reproduced, report.text()
    assert report.answer == recorded.meta["answer"]
    assert report.served == recorded.meta["summary"]["policy_calls"] + recorded.meta["summary"]["call_cache_hits"]


def test_regenerating_gives_the_committed_trees(tmp_path: Path) -> None:
    for fresh in regenerate_module().regenerate(tmp_path):
        report = diff(load(EXAMPLES / fresh.name), load(fresh))
        assert report.same, f"{fresh.name} is stale (run traces/examples/regenerate.py): {report.text()}"


def test_the_examples_show_what_they_are_named_for() -> None:
    summaries = {path.stem: load(path).meta["summary"] for path in COMMITTED}
    assert summaries["expression-depth1-guesses"]["guesses"] > 0
    assert summaries["subtree-reuse"]["subtree_cache_hits"] > 0
    assert summaries["node-budget"]["limits_hit"] == ["max_nodes"]
    assert summaries["sum-depth3"]["levels"] == 2
    hidden = load(EXAMPLES / "permutation-hidden-facts.json")
    assert hidden.meta["facts"] == "hidden" and hidden.meta["status"] == "ok"
    assert any(data.get("oracle") for _, data in hidden.workspaces())
