"""`messplus retrain`, `predictors`, `predictors activate`, `train FILE.csv` and `beat`
through the real entry point."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis

from db.predictors import active_version, active_version_id, list_versions
from router.dataset import write_csv
from router.predictor import SatisfactionPredictor
from router.synthetic import synthetic_zoo
from tests.cli.conftest import Run, one_error_line
from tests.training.conftest import Deployment
from workers.app import app


def _published(result: Run) -> int:
    """The version id a command reports publishing (ids are not reset between tests)."""
    assert result.code == 0, result
    found = re.search(r"published version (\d+)", result.out)
    assert found, result.out
    return int(found.group(1))


def _active(deployment: Deployment) -> int | None:
    with deployment.sessions.begin() as session:
        return active_version_id(session)


def test_retrain_prints_the_comparison_and_publishes(
    run: Callable[..., Run], deployment: Deployment
) -> None:
    deployment.rate_zoo()
    dry = run("retrain", "--dry-run", "--batch-size", "100")
    assert dry.code == 0, dry
    assert "dry run, nothing published; would publish" in dry.out
    assert "candidate" in dry.out and "constant base rates" in dry.out
    assert "train" in dry.err and "evaluate" in dry.err  # the progress bars
    assert _active(deployment) is None

    first = run("retrain")
    version = _published(first)
    assert "and activated it" in first.out
    second = run("retrain")
    assert second.code == 0, second
    assert f"active (version {version})" in second.out
    assert "rejected, nothing published" in second.out
    assert _active(deployment) == version


def test_predictors_lists_versions_and_activate_rolls_back(
    run: Callable[..., Run], deployment: Deployment
) -> None:
    assert "no predictor versions" in run("predictors").out
    deployment.rate_zoo(0, 300)
    first = _published(run("retrain"))
    deployment.rate_zoo(300, 1500)
    second = _published(run("retrain"))
    listing = run("predictors")
    assert listing.code == 0
    lines = listing.out.splitlines()
    assert lines[0].split() == [
        "id",
        "created",
        "(UTC)",
        "active",
        "log-loss",
        "Brier",
        "ECE",
        "n",
        "note",
    ]
    assert lines[1].split()[0] == str(second) and " yes " in lines[1]
    assert lines[2].split()[0] == str(first) and " yes " not in lines[2]
    assert "retrain: " in lines[1]

    rolled = run("predictors", "activate", str(first))
    assert rolled.code == 0 and f"{second} -> {first}" in rolled.out
    assert _active(deployment) == first
    missing = str(second + 100)
    assert "unknown predictor version" in one_error_line(run("predictors", "activate", missing))
    assert _active(deployment) == first


def test_retrain_without_a_zoo_is_one_error_line(run: Callable[..., Run]) -> None:
    assert "no enabled model" in one_error_line(run("retrain"))


@pytest.fixture
def labelled_csv(tmp_path: Path) -> Path:
    path = tmp_path / "zoo.csv"
    write_csv(synthetic_zoo(600, seed=3).data, path)
    return path


def test_train_from_csv_warm_starts_the_router(
    run: Callable[..., Run], deployment: Deployment, labelled_csv: Path
) -> None:
    trained = run("train", str(labelled_csv))
    assert trained.code == 0 and "trained on 600 labelled prompts x 3 models" in trained.out
    assert "not published" in trained.out and _active(deployment) is None

    published = run("train", str(labelled_csv), "--publish", "--note", "offline arc")
    first = _published(published)
    assert ", active" in published.out and _active(deployment) == first
    again = run("train", str(labelled_csv), "--publish")
    assert ", inactive" in again.out and _active(deployment) == first
    forced = run("train", str(labelled_csv), "--activate")
    assert _active(deployment) == _published(forced) != first
    with deployment.sessions.begin() as session:
        notes = [v.note for v in list_versions(session)]
        version = active_version(session)
        assert version is not None
        predictor = SatisfactionPredictor.from_bytes(version.blob)
    assert notes == ["csv: zoo.csv", "csv: zoo.csv", "offline arc"]
    assert predictor.trials.tolist() == [600.0, 600.0, 600.0]
    # It learned from the prompts: the hard topics are predicted harder than the easy ones.
    zoo = synthetic_zoo(600, seed=3)
    p = predictor.predict(list(zoo.data.prompts))
    assert np.corrcoef(p[:, 0], zoo.probability[:, 0])[0, 1] > 0.8


def test_train_refuses_bad_files_and_other_zoos(
    run: Callable[..., Run], deployment: Deployment, tmp_path: Path
) -> None:
    assert "no such file" in one_error_line(run("train", str(tmp_path / "missing.csv")))
    bad = tmp_path / "bad.csv"
    bad.write_text("doc_id,input_text\n1,hello\n")
    assert "no label columns" in one_error_line(run("train", str(bad)))
    two = tmp_path / "two.csv"
    write_csv(synthetic_zoo(50, models=("a", "b"), skills=(0.0, 1.0), cost_j=(1, 2)).data, two)
    error = one_error_line(run("train", str(two), "--publish"))
    assert "labels 2 models but the zoo has 3 enabled" in error
    assert _active(deployment) is None


def test_train_publish_without_a_zoo(run: Callable[..., Run], labelled_csv: Path) -> None:
    assert "no enabled model" in one_error_line(run("train", str(labelled_csv), "--publish"))


@pytest.mark.services
def test_beat_runs_celery_beat_with_a_schedule_file(
    run: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, broker: redis.Redis
) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(app, "start", started.append)
    schedule = tmp_path / "state" / "beat"
    assert run("beat", "--schedule", str(schedule), "--loglevel", "debug").code == 0
    assert started == [["beat", f"--schedule={schedule}", "--loglevel=DEBUG"]]
    assert schedule.parent.is_dir()
