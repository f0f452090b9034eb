from __future__ import annotations

import pytest

from hch.errors import PolicySpecError
from hch.experts import ExpertPolicy
from hch.policies.spec import make_policy


def test_expert_is_the_offline_default() -> None:
    policy = make_policy("expert")
    assert isinstance(policy, ExpertPolicy)
    assert policy.fingerprint.startswith("expert(")


def test_an_expert_subset_can_be_named() -> None:
    policy = make_policy("expert:list")
    assert isinstance(policy, ExpertPolicy)
    assert [e.name for e in policy.experts] == ["list"]
    assert policy.fingerprint != make_policy("expert").fingerprint


@pytest.mark.parametrize(
    ("spec", "message"),
    [("nope", "unknown policy 'nope'"), ("Bad Spec!", "malformed policy spec"), ("expert:zzz", "unknown expert")],
)
def test_bad_specs_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(PolicySpecError, match=message):
        make_policy(spec)


@pytest.mark.parametrize("spec", ["human:caf\udce9", "script:\udcff.yaml", "root=expert,else=human:\ud800"])
def test_a_spec_that_is_not_valid_text_is_refused(spec: str) -> None:
    with pytest.raises(PolicySpecError, match="the policy spec is not valid text: character"):
        make_policy(spec)
