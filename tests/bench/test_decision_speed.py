"""bench.decision_speed runs end to end on a tiny input: the script must not rot between the
days someone measures with it. Its figures are not checked here (timed tests are noise on
shared machines); the README quotes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_prints_every_path_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.decision_speed",
            "--requests",
            "60",
            "--chunk",
            "16",
            "--repeats",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    paths = [row["path"] for row in json.loads(out.read_text())["results"]]
    assert paths == [
        "decide, one by one",
        "decide, chunks of 16",
        "featurise, one by one",
        "featurise, chunks of 16",
    ]
    for path in paths:
        assert f"| {path} |" in done.stdout


def test_refuses_a_non_positive_count() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.decision_speed", "--repeats", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "must be positive" in done.stderr
