from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_example_runs_offline_and_shows_the_careless_leaves_spoiling_the_root(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "scripted_and_mixed.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("script everywhere: 31 (ok)")
    assert any(line.startswith("script at the root, expert below: 31 (ok)") for line in lines)
    assert any(line.startswith("script above, careless leaves: 32 (ok)") for line in lines)
    assert "    4 node(s) by careless-adder@1" in lines
