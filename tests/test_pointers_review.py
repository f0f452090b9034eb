"""Pointer mode through the tools over traces and the composite policies: save/load, replay, show,
distill, votes and the noisy expert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hch
from hch.experts.noisy import NoisyExpertPolicy
from hch.learning.distill import Options, distill
from hch.limits import Limits
from hch.policies.vote import VotePolicy, ballot
from hch.record import format as trace_format
from hch.review.replay import replay
from hch.review.viewer import page_data
from hch.workspace import Expand

pytestmark = pytest.mark.anyio
LONG = ", ".join(str(n) for n in range(10, 30))
QUESTION = f"What is the sum of [[{LONG}]]?"


async def test_a_pointer_trace_saves_loads_and_replays_exactly(tmp_path: Path) -> None:
    result = await hch.answer(QUESTION, depth=4, limits=Limits(bandwidth=70), trace_path=tmp_path / "t.json")
    loaded = trace_format.load(tmp_path / "t.json")
    assert loaded.meta["messages"] == result.trace.meta["messages"] and loaded.meta["limits"]["bandwidth"] == 70
    root = loaded.graph.nodes[loaded.root]
    assert root["expansions"] and root["pointers"]["$1"].startswith("$m")
    report, _ = await replay(loaded)
    assert report.reproduced and report.answer == result.answer == str(sum(range(10, 30)))


async def test_a_replay_with_another_policy_from_the_root_lets_it_act_on_the_view(tmp_path: Path) -> None:
    result = await hch.answer(QUESTION, depth=4, limits=Limits(pointers=True))
    other = hch.policies.callable.CallablePolicy(lambda ws: "seen " + ws.question, "other")
    report, _ = await replay(result.trace, policy=other)
    assert report.answer == f"seen What is the sum of {LONG}?"  # it acted at the root; its $1 resolved


async def test_distilled_pairs_hold_the_text_and_chats_hold_the_view_and_the_expand_action(tmp_path: Path) -> None:
    await hch.answer(QUESTION, depth=4, limits=Limits(pointers=True), trace_path=tmp_path / "t.json")
    distill([tmp_path / "t.json"], tmp_path / "out", Options(validation=0))
    pair = json.loads((tmp_path / "out" / "pairs-train.jsonl").read_text().splitlines()[0])
    assert pair["question"] == f"What is the sum of {LONG}?" and pair["answer"] == str(sum(range(10, 30)))
    chats = [json.loads(line) for line in (tmp_path / "out" / "chat-train.jsonl").read_text().splitlines()]
    first = chats[0]["messages"]
    assert '"What is the sum of $1?"' in first[1]["content"] and "Pointers: $1, $2" in first[1]["content"]
    assert json.loads(first[2]["content"]) == {"kind": "expand", "questions": [], "answer": "", "pointer": "$1"}


async def test_votes_count_expansions_as_ballots_and_the_noisy_expert_routes_too() -> None:
    assert ballot(Expand(pointer=" $2")) == "expand: $2"
    result = await hch.answer(QUESTION, depth=4, policy=VotePolicy(3, NoisyExpertPolicy(noise=0.0)),
                              limits=Limits(pointers=True))
    assert result.answer == str(sum(range(10, 30)))
    root = result.trace.graph.nodes[result.trace.root]
    assert [e["pointer"] for e in root["expansions"]] == ["$1"]


def test_show_and_the_viewer_display_pointers_and_expansions_escaped(tmp_path: Path) -> None:
    hch.answer_sync("Report [[a \x1b[2J b]]", depth=0, policy="script:" + str(_relay(tmp_path)),
                    limits=Limits(pointers=True), trace_path=tmp_path / "t.json")
    shown = subprocess.run([sys.executable, "-m", "hch", "show", str(tmp_path / "t.json"), "--node", "0"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "pointer $1 = $m" in shown.stdout and '"a \\u001b[2J b"' in shown.stdout  # quoted as JSON
    assert "\x1b" not in shown.stdout
    assert "expanded $1 ($m" in shown.stdout and "answer: It was a \\x1b[2J b" in shown.stdout
    data = page_data(trace_format.load(tmp_path / "t.json"))["nodes"][0]
    assert data["pointers"][0][0] == "$1" and data["pointers"][0][2] == "a \x1b[2J b"
    assert data["expanded"] == ["$1 after step 0"]


def _relay(tmp_path: Path) -> Path:
    path = tmp_path / "relay.yaml"
    path.write_text("rules:\n  - match: 'Report (?P<p>\\$\\d+)'\n    expand: ['{{ p }}']\n"
                    "    answer: 'It was {{ expanded[p] }}'\n")
    return path


def test_chromium_shows_a_node_s_pointers_and_expansions_as_text(tmp_path: Path) -> None:
    from test_viewer import EVIL, dump_dom

    from hch.review import viewer

    result = hch.answer_sync(f"Report [[{EVIL}]]", depth=0, policy="script:" + str(_relay(tmp_path)),
                             limits=Limits(pointers=True))
    dom = dump_dom(viewer.write(result.trace, tmp_path / "p.html"), tmp_path)
    assert 'data-ready="1"' in dom and "data-pwned" not in dom
    assert "<dt>pointers</dt>" in dom and "$1 = $m" in dom and "<dt>expanded</dt>" in dom and "$1 after step 0" in dom
