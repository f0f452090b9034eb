"""The `web` policy: H is whichever participant of `hch serve` takes the workspace from the queue.

`--policy web` (or a part of a positional spec: `root=web,else=expert`) works only in runs that `hch serve`
starts: its `act()` puts the workspace on the server's queue (`hch.serve.desk.Desk`) and waits for a
participant's action. The reply's `raw` records which participant (a pseudonymous id such as `p3`, never a
name or token) acted, when the workspace was shown and answered (wall clock), and the seconds spent.
`web(NAME)` keeps different pools' answers apart in the call cache, as `human(NAME)` does.
"""

from __future__ import annotations

import time

import anyio

from hch.errors import PolicySpecError, RunAborted
from hch.run.position import current, deadline, run_id
from hch.serve.desk import Desk
from hch.workspace import Reply, Workspace

_ACTIVE: Desk | None = None
"""The desk of the `hch serve` running in this process (one per process), for `make_policy("web")`."""


def activate(desk: Desk | None) -> None:
    """Make `desk` the one `web` policies built from a spec serve (None: no server any more)."""
    global _ACTIVE
    _ACTIVE = desk


def active() -> Desk:
    """The running server's desk; outside `hch serve` a one-line `PolicySpecError`."""
    if _ACTIVE is None:
        raise PolicySpecError(
            "the web policy serves workspaces to the participants of `hch serve`: start the run there "
            "(hch serve --ask QUESTION --policy web --participants N)"
        )
    return _ACTIVE


class WebPolicy:
    """H is a participant in a browser; `desk` is the server's queue."""

    def __init__(self, desk: Desk, name: str | None = None) -> None:
        self.desk, self.name = desk, name

    @property
    def fingerprint(self) -> str:
        return f"web({self.name})" if self.name else "web"

    async def act(self, workspace: Workspace) -> Reply:
        position, tree = current(), run_id()
        if position is None or tree is None:
            raise RunAborted("the web policy acts only inside a run (hch.answer) of hch serve")
        limit = deadline()
        wall = None if limit is None else time.time() + (limit - anyio.current_time())
        return await self.desk.serve(self.fingerprint, workspace, tree, position.node, position.parent, wall)

    def __repr__(self) -> str:
        return f"WebPolicy({self.fingerprint!r})"
