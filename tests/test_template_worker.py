from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap

import pytest

from hch.policies import template_worker
from hch.policies.template_worker import TemplateWorkerError, render


def test_a_rendering_gives_what_jinja_gives() -> None:
    variables = {"answers": ["3", "4"], "groups": ("a",), "subs": [{"answer": "3", "status": "ok"}]}
    template = "{{ answers|map('number')|sum }} {{ groups[0] }} {{ subs[0].status }} {{ 'x'|center(5) }}|"
    assert render(template, variables, 2.0) == "7 a ok   x  |"


def test_a_memory_bomb_fails_in_one_line_and_the_worker_is_replaced() -> None:
    render("{{ 1 }}", {}, 2.0)
    before = template_worker.worker_pid()
    with pytest.raises(TemplateWorkerError, match=r"^the template ran out of its 1,024 MiB of memory$"):
        render("{{ range(2000)|map('center', 999999)|list|length }}", {}, 2.0)
    assert render("{{ 'next' }}", {}, 2.0) == "next"
    assert template_worker.worker_pid() not in (None, before)


def test_a_cpu_bomb_in_library_code_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_worker, "CPU_SECONDS", 0.3)
    with pytest.raises(TemplateWorkerError, match=r"^the template ran over 0.3 s of CPU$"):
        render("{{ ('x' * 999999)|wordwrap(1) }}", {}, 2.0)
    assert render("{{ 'next' }}", {}, 2.0) == "next"


def test_a_killed_worker_is_replaced() -> None:
    render("{{ 1 }}", {}, 2.0)
    pid = template_worker.worker_pid()
    assert pid is not None and template_worker._worker is not None
    os.kill(pid, signal.SIGKILL)
    template_worker._worker.process.wait()
    assert render("{{ 'again' }}", {}, 2.0) == "again"
    assert template_worker.worker_pid() not in (None, pid)


def test_template_errors_come_back_as_their_message() -> None:
    with pytest.raises(TemplateWorkerError, match=r"^'nothing' is undefined$"):
        render("{{ nothing }}", {}, 2.0)
    with pytest.raises(TemplateWorkerError, match="a repetition would hold 1,000,000,000"):
        render("{{ 'x' * 1000000000 }}", {}, 2.0)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="waits on the worker's exit with a pidfd (Linux)")
def test_the_worker_ends_with_hch() -> None:
    """hch killed outright (SIGKILL, no clean-up): its worker sees its stdin close and exits."""
    code = textwrap.dedent("""
        import os, sys
        from hch.policies import template_worker
        template_worker.render("{{ 1 }}", {}, 2.0)
        print(template_worker.worker_pid(), flush=True)
        sys.stdin.read()
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = os.pidfd_open(int(parent.stdout.readline()))  # readable once the worker has exited
    try:
        parent.kill()
        parent.wait()
        assert select.select([worker], [], [], 60) == ([worker], [], [])
    finally:
        os.close(worker)
