from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from hch.errors import PolicySpecError, RunAborted
from hch.policies.spec import make_policy
from hch.serve.desk import Desk
from hch.serve.policy import WebPolicy, activate
from hch.serve.store import Store
from hch.workspace import Workspace


def test_the_web_policy_exists_only_inside_hch_serve(tmp_path: Path) -> None:
    with pytest.raises(PolicySpecError, match="hch serve"):
        make_policy("web")
    desk = Desk(Store(tmp_path / "s.sqlite"))
    activate(desk)
    try:
        policy = make_policy("root=web(study1),else=expert")
        assert policy.fingerprint.startswith("positional(root=web(study1),else=expert(")
    finally:
        activate(None)


def test_the_web_policy_acts_only_inside_a_run(tmp_path: Path) -> None:
    policy = WebPolicy(Desk(Store(tmp_path / "s.sqlite")), name="pool")
    assert policy.fingerprint == "web(pool)"
    with pytest.raises(RunAborted, match="inside a run"):
        anyio.run(policy.act, Workspace(question="q", depth=0))
