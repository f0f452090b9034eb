from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hch
from hch.errors import PolicySpecError, QuestionError
from hch.policies.callable import CallablePolicy
from hch.policies.positional import PositionalPolicy, is_positional, parse
from hch.policies.scripted import ScriptedPolicy
from hch.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
PRESET = str(ROOT / "policies" / "arith-human.yaml")
SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def test_the_most_specific_position_wins() -> None:
    policy = hch.make_policy(f"depth0=script:{PRESET}, root=human, else=expert")
    assert isinstance(policy, PositionalPolicy)
    assert policy.at(3, root=True).fingerprint == "human"
    assert isinstance(policy.at(0, root=True), type(policy.at(3, root=True)))  # root beats depth0
    assert isinstance(policy.at(0, root=False), ScriptedPolicy)
    assert policy.at(2, root=False).fingerprint.startswith("expert(")


def test_the_fingerprint_lists_every_part_in_a_canonical_order() -> None:
    one = hch.make_policy("else=expert,root=human,depth1=expert:list")
    two = hch.make_policy("root=human, depth1=expert:list, else=expert")
    assert one.fingerprint == two.fingerprint
    parts = f"root=human,depth1={hch.make_policy('expert:list').fingerprint},else={hch.ExpertPolicy().fingerprint}"
    assert one.fingerprint == f"positional({parts})"
    assert hch.make_policy("root=human:ada,depth1=expert:list,else=expert").fingerprint != one.fingerprint


def test_parts_with_the_same_spec_share_one_policy() -> None:
    policy = hch.make_policy("root=human,depth0=human,else=expert")
    assert isinstance(policy, PositionalPolicy)
    assert policy.parts["root"] is policy.parts["depth0"]


@pytest.mark.parametrize(
    ("spec", "positional"),
    [
        ("root=human,else=llm", True),
        ("depth0=expert,else=human", True),
        ("expert(noise=0.02)", False),  # `=` inside parentheses belongs to the part's own spec
        ("vote(3, expert)", False),
        ("script:a=b.yaml", False),
        ("expert", False),
    ],
)
def test_a_positional_spec_has_a_top_level_position_and_equals_sign(spec: str, positional: bool) -> None:
    assert is_positional(spec) is positional


def test_part_specs_keep_their_own_commas_and_equals_signs() -> None:
    pairs = parse("root=vote(3, expert(noise=0.1)),else=expert")
    assert pairs == [("root", "vote(3, expert(noise=0.1))"), ("else", "expert")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("root=human", "needs an else= part"),
        ("top=human,else=expert", "unknown position 'top'"),
        ("depthx=human,else=expert", "unknown position 'depthx'"),
        ("root=human,root=expert,else=expert", "position 'root' is given twice"),
        ("root=,else=expert", "malformed part 'root='"),
        ("root=human,expert", "malformed part 'expert'"),
        ("root=nope,else=expert", "unknown policy 'nope'"),
    ],
)
def test_bad_positional_specs_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(PolicySpecError, match=message):
        hch.make_policy(spec)


def test_the_trace_records_which_policy_acted_where() -> None:
    policy = hch.make_policy(f"root=script:{PRESET},depth1=expert:list,else=expert")
    result = hch.answer_sync(SUM, depth=3, policy=policy)
    assert result.answer == "31"
    assert result.trace.meta["policy"] == policy.fingerprint
    by_depth = {d["depth"]: d["policy"] for _, d in result.trace.workspaces()}
    assert by_depth[3].startswith("script(arith-human@")
    assert by_depth[2] == hch.ExpertPolicy().fingerprint
    assert by_depth[1] == hch.make_policy("expert:list").fingerprint
    assert {d["policy"] for _, d in result.trace.calls()} == set(by_depth.values())


def test_the_root_part_checks_the_question_up_front() -> None:
    with pytest.raises(QuestionError, match="no rule of the script"):
        hch.answer_sync("Why is the sky blue?", depth=2, policy=hch.make_policy(f"root=script:{PRESET},else=expert"))


@pytest.mark.anyio
async def test_a_positional_policy_mixes_python_callables_too() -> None:
    async def leaf(workspace: Workspace) -> str:
        return "leaf"

    policy = PositionalPolicy({"depth0": CallablePolicy(leaf, "leaf@1"), "else": hch.ExpertPolicy()})
    result = await hch.answer("What is the sum of 1, 2, 3, 4?", depth=1, policy=policy)
    assert result.status == "error"  # the expert cannot add "leaf" + "leaf": the leaves were the callable
    assert {d["policy"] for _, d in result.trace.workspaces() if d["depth"] == 0} == {"leaf@1"}


def test_the_cli_takes_a_positional_spec_and_records_it(tmp_path: Path) -> None:
    spec = f"root=script:{PRESET},else=expert"
    done = subprocess.run(
        [sys.executable, "-m", "hch", "ask", SUM, "--policy", spec, "--json", "--trace", "t.json", "--no-cache"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"] == "31"
    trace = hch.load_trace(tmp_path / "t.json")
    assert trace.meta["policy_spec"] == spec and trace.meta["policy"].startswith("positional(root=script(")


CHECK = """
description: passes the question down unchanged and checks the answer before giving it
rules:
  - match: 'What is the sum of (?P<items>.+)\\?'
    ask: ["{{ question }}"]
    answer: >-
      {% set total = items|split|map('number')|sum %}
      {{ answers[0] if (answers[0]|number) == total else 'check failed: ' ~ answers[0] ~ ' is not ' ~ total }}
"""


@pytest.mark.parametrize(("noise", "verdict"), [("", "31"), ("(noise=1)", "check failed")])
def test_a_scripted_check_at_the_root_over_another_policy(tmp_path: Path, noise: str, verdict: str) -> None:
    (tmp_path / "check.yaml").write_text(CHECK)
    policy = hch.make_policy(f"root=script:{tmp_path / 'check.yaml'},else=expert{noise}")
    result = hch.answer_sync(SUM, depth=3, policy=policy)
    assert result.answer.startswith(verdict)
    root = result.trace.graph.nodes[result.trace.root]
    assert root["policy"].startswith("script(check@")
