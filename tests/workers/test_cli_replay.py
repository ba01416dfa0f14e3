"""`messplus replay` end to end through the real command line entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from router.dataset import load_csv, write_csv
from router.synthetic import synthetic_zoo
from workers.cli import main

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "llama3-zoo"


@pytest.fixture(scope="module")
def zoo_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zoo") / "synthetic.csv"
    write_csv(synthetic_zoo(600, seed=3).data, path)
    return path


def test_csv_round_trip(zoo_csv: Path) -> None:
    data = load_csv(zoo_csv)
    original = synthetic_zoo(600, seed=3).data
    assert data.models == original.models and data.prompts == original.prompts
    assert (data.satisfied == original.satisfied).all()


def test_json_is_exactly_one_object(zoo_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "replay",
            str(zoo_csv),
            "--alpha",
            "0.6",
            "--seeds",
            "0,1",
            "--policy",
            "messplus",
            "--policy",
            "mix",
            "--json",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["requests"] == 600 and document["alpha"] == 0.6
    assert document["cost_unit"] == "J"
    assert set(document["policies"]) == {"messplus", "mix"}
    row = document["policies"]["messplus"]
    assert set(row) == {
        "satisfaction",
        "satisfaction_min",
        "cost",
        "explored",
        "model_share",
        "sla_met",
    }
    assert sum(row["model_share"].values()) == pytest.approx(1.0)
    assert captured.err == ""  # no progress bar with --json


def test_table_and_plot(zoo_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "replay.png"
    assert (
        main(["replay", str(zoo_csv), "--alpha", "0.6", "--seeds", "0", "--plot", str(plot)]) == 0
    )
    out = capsys.readouterr().out
    for policy in ("messplus", "paper", "random", "threshold", "mix", "stratified", "oracle"):
        assert policy in out
    assert "single:tiny-1b" in out
    assert "vs strat" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _write(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


HEADER = (
    "doc_id,input_text,benchmark_name,label_a,energy_consumption_a,label_b,energy_consumption_b\n"
)


@pytest.mark.parametrize(
    ("content", "alpha", "message"),
    [
        (None, "0.5", "no such file"),
        ("", "0.5", "is empty"),
        ("doc_id,input_text\n1,hi\n", "0.5", "no label columns"),
        (HEADER, "0.5", "no data rows"),
        (HEADER + "1,hi,x,1,2.0,2,3.0\n", "0.5", "line 2: label_b must be 0 or 1"),
        (HEADER + "1,hi,x,1,2.0,1,-3\n", "0.5", "line 2: energy_consumption_b must be"),
        (HEADER + "1,hi,x,1,2.0,1\n", "0.5", "line 2: 6 fields"),
        (HEADER + "1,hi,x,1,2.0,1,3.0\n", "1.0", "alpha must be in (0, 1)"),
        (HEADER + "1,hi,x,1,2.0,1,3.0\n", "0", "alpha must be in (0, 1)"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line(
    tmp_path: Path, content: str | None, alpha: str, message: str
) -> None:
    path = tmp_path / "missing.csv" if content is None else _write(tmp_path, content)
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "replay", str(path), "--alpha", alpha],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_invalid_utf8_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + b"1,caf\xe9,x,1,2.0,1,3.0\n")
    assert main(["replay", str(path), "--alpha", "0.5"]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err


def test_reference_figures_on_the_shared_data(capsys: pytest.CaptureFixture[str]) -> None:
    path = SHARED / "arc_challenge.csv"
    if not path.is_file():
        pytest.skip(f"shared data set {path} is absent (read from ../shared at run time)")
    main(["replay", str(path), "--alpha", "0.5", "--policy", "mix", "--policy", "oracle", "--json"])
    policies = json.loads(capsys.readouterr().out)["policies"]
    assert policies["mix"]["cost"] / 1e6 == pytest.approx(0.363, rel=0.03)
    assert policies["oracle"]["cost"] / 1e6 == pytest.approx(0.136, rel=0.01)
    assert policies["oracle"]["satisfaction"] == pytest.approx(0.5, abs=0.001)
