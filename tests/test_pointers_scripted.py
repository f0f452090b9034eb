"""Pointer mode for scripted humans: rules expand pointers and pass them on unread."""

from __future__ import annotations

import pytest

import hch
from hch.limits import Limits
from hch.policies.scripted import ScriptedPolicy

pytestmark = pytest.mark.anyio

SCRIPT = r"""
name: relay
rules:
  - match: 'Report (?P<p>\$\d+)'
    depth: ">=1"
    ask: ["What does {{ p }} say?"]
    answer: "Reported: {{ answers[0] }}"
  - match: 'What does (?P<p>\$\d+) say\?'
    expand: ["{{ p }}"]
    answer: "{{ p }} says {{ expanded[p] | upper }}"
    guess: "{{ p }} is unread ({{ bandwidth_left }} characters left)"
"""


async def test_a_script_passes_a_pointer_on_unread_and_another_rule_expands_it() -> None:
    policy = ScriptedPolicy.parse(SCRIPT, "relay.yaml")
    result = await hch.answer("Report [[quiet words]]", depth=1, policy=policy, limits=Limits(pointers=True))
    assert (result.answer, result.status) == ("Reported: quiet words says QUIET WORDS", "ok")
    trace = result.trace
    assert trace.graph.nodes[trace.root]["expansions"] == []  # the root routed $1 unread
    child = trace.children(trace.root)[0][0]
    assert [e["pointer"] for e in trace.graph.nodes[child]["expansions"]] == ["$1"]


async def test_a_refused_expansion_takes_the_rule_s_guess() -> None:
    policy = ScriptedPolicy.parse(SCRIPT, "relay.yaml")
    result = await hch.answer("What does [[a long enough message]] say?", depth=0, policy=policy,
                              limits=Limits(bandwidth=25))
    assert (result.answer, result.status) == ("a long enough message is unread (8 characters left)", "guess")


def test_rules_without_expand_keep_their_fingerprint() -> None:
    plain = "rules:\n  - question: Q\n    answer: A\n"
    assert "expand" not in ScriptedPolicy.parse(plain).script.model_dump_json()
    with pytest.raises(hch.errors.PolicySpecError, match="expand"):
        ScriptedPolicy.parse("rules:\n  - question: Q\n    expand: ['{{ p ']\n    answer: A\n", "x.yaml")
