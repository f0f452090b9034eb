from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "llm_scripted_server.py"


def test_the_llm_example_runs_offline_and_says_what_it_claims(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HCH_MODEL")}
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stdout.splitlines()]
    assert lines[0].startswith("answer: 10 ")
    assert "'What is 1+2?'         attempts: 429→retry, no reply→retry, 200→ok" in lines
    assert "'What is 3+4?'         attempts: 200→reask, 200→ok" in lines
    counted = next(line for line in lines if line.startswith("tokens:"))
    ours, theirs = counted.split("counted ")[1].split(",")[0], counted.split("reported ")[1].split(";")[0]
    assert ours == theirs
    assert "rerun: 10, 0 requests, 4 calls from the cache" in lines
