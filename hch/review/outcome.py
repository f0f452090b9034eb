"""How a run ended, as one exit status a shell script or a Makefile can test."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hch.record.trace import Trace


class ExitStatus(IntEnum):
    """The exit status of `hch ask` (and of `hch sweep`: OK, FAILED or LIMITED) for each outcome."""

    OK = 0
    """Answered: the root answered, and no node guessed, failed or hit a limit."""
    ERROR = 1
    """Nothing ran: bad input, a file that cannot be read, a policy that cannot be built."""
    USAGE = 2
    """Bad command line (unknown option, missing argument)."""
    GUESSED = 3
    """Answered, but the answer rests on a guess: some node (the root included) guessed, ended in
    error or hit a limit on the way."""
    FAILED = 4
    """Failed: the root ended in error (or `--fail-fast` stopped the run at a failing node, or the
    policy could not work at all); for `hch sweep`: at least one run failed."""
    LIMITED = 5
    """Stopped by a limit: the root has no answer because a limit was reached (run timeout, token or
    cost budget, node budget, steps, refusals); for `hch sweep`: its budget left runs unmade."""
    INTERRUPTED = 130
    """Interrupted: Ctrl-C, or the person acting as H quit."""


TABLE = "\n".join(
    [
        "Exit status:",
        "   0  answered",
        "   1  error before the run (bad input, unreadable file)",
        "   2  bad command line",
        "   3  answered, but a node guessed, failed or hit a limit on the way",
        "   4  failed: the root ended in error, or the run was aborted (sweep: a run failed)",
        "   5  stopped by a limit (run timeout, token or cost budget, max nodes, ...; sweep: runs left unmade)",
        " 130  interrupted (Ctrl-C, or quit at the prompt)",
    ]
)
"""The table `hch --help` and the README show."""


def exit_status(trace: Trace, status: str | None = None) -> ExitStatus:
    """The outcome of the run recorded in `trace`; `status` overrides the root's recorded status
    (the CLI passes `error` for a run that `--fail-fast` or a policy abort stopped)."""
    status = status or trace.meta.get("status") or "interrupted"
    workspaces = [data for _, data in trace.workspaces()]
    if status == "error":  # what failed: the root, or (fail-fast) the node that stopped the run
        root = trace.graph.nodes[trace.root] if workspaces else {}
        failed = [root] if root.get("status") == "error" else [w for w in workspaces if w.get("status") == "error"]
        return ExitStatus.LIMITED if any(w.get("limit") for w in failed) else ExitStatus.FAILED
    if status not in ("ok", "guess"):
        return ExitStatus.INTERRUPTED
    if status == "guess" or any(w.get("status") in ("guess", "error") or w.get("limit") for w in workspaces):
        return ExitStatus.GUESSED
    return ExitStatus.OK
