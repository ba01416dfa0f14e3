"""`messplus demo` as the README runs it: embedded, one command, nothing left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.processes import processes_matching


def test_demo_runs_embedded_and_cleans_up(tmp_path: Path) -> None:
    before = processes_matching("tritonserver", "workers.zoo_server")
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "demo", "--prompts", "120"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "120 done, 0 failed" in result.stdout
    assert "satisfaction" in result.stdout and "served by:" in result.stdout
    assert processes_matching("tritonserver", "workers.zoo_server") == before
    assert not list(tmp_path.glob("*.db")) and not (tmp_path / ".messplus").exists()
