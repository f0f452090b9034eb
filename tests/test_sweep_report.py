from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import matplotlib.image
import pytest
from PIL import Image

from hch.experts import ExpertPolicy
from hch.experts.noisy import NoisyExpertPolicy
from hch.policies.vote import vote
from hch.study.question_set import Item
from hch.study.report import write_outputs
from hch.study.rows import Row
from hch.study.sweep import RunRecord, SweepConfig, run_sweep
from hch.tasks import get_task

pytestmark = pytest.mark.anyio


def config(depths: list[int], votes: tuple[int, ...] = (1,), policy: str = "expert") -> SweepConfig:
    return SweepConfig(source="test", questions=0, depths=depths, policy=policy, votes=list(votes), concurrency=4)


async def test_outputs_are_written_and_the_plot_is_a_valid_image(tmp_path: Path) -> None:
    items = get_task("wildcard-search").generate(8, seed=1, max_depth=3)
    cfg = config([0, 1, 2, 3], votes=(1, 3), policy="expert(noise=0.1, seed=1)")
    policies = {k: vote(k, NoisyExpertPolicy(noise=0.1, seed="1")) for k in (1, 3)}
    outcome = await run_sweep(items, cfg, policies, tmp_path)
    paths = write_outputs(tmp_path, cfg, outcome)
    png = paths["png"].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(paths["png"]) as image:
        image.verify()
    assert matplotlib.image.imread(paths["png"]).shape[0] > 100
    assert ElementTree.parse(paths["svg"]).getroot().tag.endswith("svg")
    summary = paths["summary"].read_text().splitlines()
    assert summary[0].startswith("votes,depth,required_depth,questions,graded,correct,accuracy,ci_low,ci_high")
    assert summary[0].split(",") == list(Row.model_fields)
    assert len(summary) == 1 + 2 * 4
    assert len(paths["buckets"].read_text().splitlines()) == 1 + 2 * 4 * 4
    report = json.loads(paths["json"].read_text())
    assert report["config"]["depths"] == [0, 1, 2, 3] and report["config"]["votes"] == [1, 3]
    assert {"hch", "python", "matplotlib", "pydantic", "numpy"} <= set(report["versions"])
    assert report["totals"]["runs"] == 64 and len(report["rows"]) == 8
    assert report["totals"]["invocations_made"] == sum(r.invocations_made for r in outcome.records)
    assert report["intervals"]["bootstrap_seed"] == 0 and "bootstrap" in report["intervals"]["methods"]
    assert [r["variant"] for r in report["rows"]] == ["expert(noise=0.1, seed=1)"] * 4 + ["vote:3"] * 4
    assert {r["ci_method"] for r in report["rows"]} <= {"bootstrap", "wilson-instances"}  # 8 questions, 1 instance
    for record in outcome.records:
        assert (tmp_path / record.trace).exists()
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 64 and RunRecord.model_validate_json(lines[0])


async def test_reports_are_the_same_on_a_rerun(tmp_path: Path) -> None:
    items = get_task("permutation-powering").generate(20, seed=2, max_depth=3)
    cfg = config([1, 3])
    outcome = await run_sweep(items, cfg, {1: ExpertPolicy()}, tmp_path)
    first = write_outputs(tmp_path, cfg, outcome, plot=False)
    summary, buckets = first["summary"].read_text(), first["buckets"].read_text()
    again = write_outputs(tmp_path, cfg, outcome, plot=False)
    assert (again["summary"].read_text(), again["buckets"].read_text()) == (summary, buckets)
    assert "png" not in again


async def test_a_set_without_gold_is_plotted_for_cost_only(tmp_path: Path) -> None:
    items = [Item(id="a", question="What is the sum of 1, 2, 3?"), Item(id="b", question="What is 2 * 3?")]
    cfg = config([0, 1])
    outcome = await run_sweep(items, cfg, {1: ExpertPolicy()}, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an empty legend
        paths = write_outputs(tmp_path, cfg, outcome)
    rows = json.loads(paths["json"].read_text())["rows"]
    assert all(r["accuracy"] is None and r["graded"] == 0 for r in rows)
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
