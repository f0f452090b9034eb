"""Templates rendered in a separate, capped process, so that no template can exhaust hch's memory or CPU.

`bounded_jinja` checks a template's own steps and the operations that grow values, with precise
messages; it cannot see inside library code (`wordwrap(1)` on a long text runs for seconds in C and
in Python outside the template) nor bound the memory of a chain of filters. So every rendering runs
in one persistent worker process per hch process, started at the first rendering:

- its address space is capped at `MEMORY_BYTES` (RLIMIT_AS): a template past it gets MemoryError
  (the worker then restarts) or, if the kernel kills the worker, its node fails all the same;
- each rendering may use `CPU_SECONDS` of CPU time (a profiling timer whose signal ends the worker):
  the worker is then restarted at the next rendering.

Either way the node fails with a one-line error and the run goes on; hch itself never runs template
code. The worker reads requests on its stdin and exits when hch exits (its stdin closes); it ignores
Ctrl-C (hch handles it). Renderings are serialised (each takes microseconds for normal templates).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

MEMORY_BYTES = 1 << 30
"""The worker's address-space cap (1 GiB), RLIMIT_AS."""
CPU_SECONDS = 2.0
"""CPU seconds one rendering may use in the worker (template and library code alike)."""
WALL_SECONDS = 120.0
"""A backstop on the wall-clock wait for one reply (worker start included); never reached by a live worker."""
_HEADER = struct.Struct(">I")
_REPLY_BYTES = 12 * 100_000 + 4096  # bounded_jinja.MAX_OUTPUT characters, each at most 12 bytes of JSON


class TemplateWorkerError(Exception):
    """A rendering ended the worker (CPU time, memory) or the worker could not run."""


class _Worker:
    """One worker process and its pipes (parent side)."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])  # the folder holding the hch package
        code = f"import sys; sys.path.insert(0, {root!r}); from hch.policies.template_worker import main; main()"
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", code, str(MEMORY_BYTES)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
        )
        self.pid = os.getpid()  # a forked hch process starts its own worker

    def render(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        data = pickle.dumps(request)
        try:
            stdin.write(_HEADER.pack(len(data)) + data)
            stdin.flush()
        except OSError:
            return self._died(request)
        ready, _, _ = select.select([stdout], [], [], WALL_SECONDS)
        if not ready:
            self.close()
            raise TemplateWorkerError(f"the template's worker did not answer within {WALL_SECONDS:g} s")
        line = stdout.readline(_REPLY_BYTES)
        if not line.endswith(b"\n"):
            return self._died(request)
        reply: dict[str, Any] = json.loads(line)
        if reply.get("restart"):  # after a MemoryError: a fresh worker for the next rendering
            self.close()
        return reply

    def _died(self, request: dict[str, Any]) -> dict[str, Any]:
        self.close()
        code = self.process.returncode
        if code in (-signal.SIGPROF, -signal.SIGXCPU):
            raise TemplateWorkerError(f"the template ran over {request['cpu_seconds']:g} s of CPU")
        if code == -signal.SIGKILL:
            raise TemplateWorkerError(
                f"the template's worker was killed (out of its {MEMORY_BYTES >> 20:,} MiB of memory?)")
        raise TemplateWorkerError(f"the template's worker ended (status {code})")

    def alive(self) -> bool:
        return self.process.poll() is None and self.pid == os.getpid()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


_lock = threading.Lock()
_worker: _Worker | None = None


def _forgotten() -> None:
    """In a forked child: the parent's worker and lock are the parent's (the child starts its own)."""
    global _lock, _worker
    _lock, _worker = threading.Lock(), None


os.register_at_fork(after_in_child=_forgotten)


@atexit.register
def _at_exit() -> None:
    """The worker killed as hch exits (it would end anyway once its stdin closes). Without the lock: a
    thread abandoned by a timeout may hold it."""
    worker = _worker
    if worker is not None and worker.pid == os.getpid() and worker.process.poll() is None:
        worker.process.kill()


def render(template: str, variables: Mapping[str, Any], max_seconds: float) -> str:
    """`template` rendered with `variables` in the worker, within `bounded_jinja`'s budget (`max_seconds`
    of template time), `CPU_SECONDS` of CPU and `MEMORY_BYTES` of memory; past one, `TemplateWorkerError`
    or the template's own error, as text (`TemplateWorkerError` too)."""
    global _worker
    request = {"template": template, "variables": dict(variables), "max_seconds": max_seconds,
               "cpu_seconds": CPU_SECONDS}
    with _lock:
        if _worker is None or not _worker.alive():
            if _worker is not None and _worker.pid == os.getpid():
                _worker.close()
            _worker = _Worker()
        reply = _worker.render(request)
    if "error" in reply:
        raise TemplateWorkerError(str(reply["error"]))
    return str(reply["text"])


def shutdown() -> None:
    """Ends the worker (the next rendering starts a new one)."""
    global _worker
    with _lock:
        if _worker is not None and _worker.pid == os.getpid():
            _worker.close()
        _worker = None


def worker_pid() -> int | None:
    """The live worker's process id, if there is one (for tests)."""
    with _lock:
        return _worker.process.pid if _worker is not None and _worker.alive() else None


# The worker side


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    """The reply to one request (after a MemoryError, with `restart`: hch then ends this worker)."""
    from hch.policies import bounded_jinja
    from hch.policies.scripted import compiled

    bounded_jinja.MAX_SECONDS = float(request["max_seconds"])
    signal.setitimer(signal.ITIMER_PROF, float(request["cpu_seconds"]))  # its signal ends the worker
    try:
        return {"text": bounded_jinja.render(compiled(request["template"]), request["variables"])}
    except MemoryError:
        return {"error": f"the template ran out of its {MEMORY_BYTES >> 20:,} MiB of memory", "restart": True}
    except Exception as exc:
        return {"error": str(exc)}
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def main() -> None:
    """The worker's loop: a request (length, pickle) on stdin, a JSON line on stdout, until stdin closes."""
    import resource

    from hch.policies import scripted  # noqa: F401  (imported before the cap: the templates' environment)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global MEMORY_BYTES
    MEMORY_BYTES = limit = int(sys.argv[1])
    with contextlib.suppress(ValueError, OSError):  # a system that cannot cap the address space: the CPU cap remains
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (header := _read_exactly(stdin, _HEADER.size)) is not None:
        body = _read_exactly(stdin, _HEADER.unpack(header)[0])
        if body is None:
            break
        stdout.write(json.dumps(_answer(pickle.loads(body))).encode() + b"\n")
        stdout.flush()
