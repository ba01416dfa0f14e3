"""`messplus demo` as the README runs it: embedded, one command, nothing left behind but
the report it was asked for."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.processes import processes_matching
from workers.report import PLOTS


def test_demo_runs_embedded_and_cleans_up(tmp_path: Path) -> None:
    # The demo's temporary files (its database, the zoo's workspace) go to a folder of its
    # own, so its processes are told apart from the Triton zoos other test runs start and
    # stop meanwhile. A short path: Triton's Python stubs put Unix sockets under it, and
    # those paths are limited to 107 bytes.
    with tempfile.TemporaryDirectory(prefix="d") as temp:
        result = subprocess.run(
            [sys.executable, "-m", "workers.cli", "demo", "--prompts", "120", "--report", "report"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": temp},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert processes_matching(temp) == []
        assert list(Path(temp).iterdir()) == []
    assert "120 done, 0 failed" in result.stdout
    assert "satisfaction" in result.stdout and "served by:" in result.stdout
    assert not list(tmp_path.glob("*.db")) and not (tmp_path / ".messplus").exists()
    report = tmp_path / "report"
    assert sorted(p.name for p in report.iterdir()) == sorted([*PLOTS, "index.html", "table.csv"])
    assert '<td>total</td><td class="n">120</td>' in (report / "index.html").read_text()
