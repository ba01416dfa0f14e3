"""The `messplus.train` task and its nightly schedule: thin wrappers around retrain."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from celery.schedules import crontab
from sqlalchemy import select

from db.models import DeadLetter
from tests.training.conftest import Deployment
from workers import celeryconfig, queues, runtime
from workers.settings import SettingsError, load_settings
from workers.tasks import train


def test_the_task_retrains_and_returns_the_report(
    cli_env: pytest.MonkeyPatch, deployment: Deployment
) -> None:
    deployment.rate_zoo()
    runtime.close()
    dry = train.run({"dry_run": True})
    assert dry["accepted"] and dry["dry_run"] and dry["published_version_id"] is None
    real = train.run({})
    assert real["published_version_id"] is not None
    assert real["candidate"]["log_loss"] == pytest.approx(dry["candidate"]["log_loss"])


def test_a_bad_payload_becomes_a_dead_letter(
    cli_env: pytest.MonkeyPatch, deployment: Deployment
) -> None:
    runtime.close()
    assert train.run({"dry_run": "yes"}) == {}
    with deployment.sessions.begin() as session:
        letters = session.scalars(select(DeadLetter)).all()
    assert [(d.queue, d.reason) for d in letters] == [("train", "dry_run must be true or false")]


@pytest.fixture
def reload_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """celeryconfig read with this test's environment, and with the real one afterwards."""
    yield monkeypatch
    monkeypatch.undo()
    importlib.reload(celeryconfig)


def test_beat_sends_train_nightly_at_the_configured_utc_time(
    reload_config: pytest.MonkeyPatch,
) -> None:
    reload_config.setenv("MESSPLUS_RETRAIN_HOUR", "4")
    reload_config.setenv("MESSPLUS_RETRAIN_MINUTE", "30")
    importlib.reload(celeryconfig)
    entry = celeryconfig.beat_schedule["retrain-nightly"]
    assert entry["task"] == "messplus.train" and entry["args"] == [{"dry_run": False}]
    assert entry["schedule"] == crontab(hour=4, minute=30)
    assert entry["options"]["queue"] == queues.TRAIN
    assert celeryconfig.timezone == "UTC"
    assert celeryconfig.task_routes["messplus.train"] == {"queue": queues.TRAIN}


def test_defaults_and_bad_times() -> None:
    settings = load_settings({})
    assert (settings.retrain_hour, settings.retrain_minute) == (3, 0)
    with pytest.raises(SettingsError, match="RETRAIN_HOUR"):
        load_settings({"MESSPLUS_RETRAIN_HOUR": "24"})
    with pytest.raises(SettingsError, match="RETRAIN_MINUTE"):
        load_settings({"MESSPLUS_RETRAIN_MINUTE": "-1"})
    with pytest.raises(SettingsError, match="visibility timeout"):
        load_settings({"MESSPLUS_RETRAIN_TIME_LIMIT_S": "7200"})
