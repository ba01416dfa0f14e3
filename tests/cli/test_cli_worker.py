"""`messplus worker`: the `celery worker` arguments each stage gets, and what a worker
checks before it starts (no worker is started; tests/e2e runs real ones)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.cli.conftest import Run, one_error_line
from workers.app import app


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, broker: redis.Redis) -> list[list[str]]:
    """The argv of every worker the command would have started (a broker is up: workers
    refuse to start without one)."""
    calls: list[list[str]] = []
    monkeypatch.setattr(app, "worker_main", calls.append)
    return calls


def _quiet_solo(queue: str, concurrency: int = 1, pool: str = "solo") -> list[str]:
    return [
        "worker",
        f"--queues={queue}",
        f"--hostname={queue}-{os.getpid()}@%h",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


@pytest.mark.parametrize("stage", ["route", "feedback", "train"])
def test_each_stage_consumes_its_queue_in_a_solo_pool(
    run: Callable[..., Run], started: list[list[str]], stage: str
) -> None:
    assert run("worker", stage).code == 0
    assert started == [_quiet_solo(stage)]


def test_concurrency_above_one_uses_prefork_and_loglevel_passes_through(
    run: Callable[..., Run], started: list[list[str]]
) -> None:
    assert run("worker", "route", "--concurrency", "4", "--loglevel", "warning").code == 0
    expected = _quiet_solo("route", 4, "prefork")
    expected[5] = "--loglevel=WARNING"
    assert started == [expected]


def test_model_worker_consumes_the_model_queue_of_a_registered_model(
    run: Callable[..., Run], started: list[list[str]]
) -> None:
    assert "unknown model 'tiny-1b'" in one_error_line(run("worker", "model", "tiny-1b"))
    assert run("zoo", "register").code == 0
    assert run("worker", "model", "tiny-1b").code == 0
    assert started == [_quiet_solo("model.tiny-1b")]


def test_bad_arguments_start_nothing(run: Callable[..., Run], started: list[list[str]]) -> None:
    assert run("worker", "route", "--concurrency", "0").code == 2
    assert run("worker", "route", "--loglevel", "chatty").code == 2
    assert run("worker", "sideways").code == 2
    assert started == []


def test_a_worker_refuses_to_start_on_an_unmigrated_database(
    run: Callable[..., Run], started: list[list[str]], cli_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "empty.db").touch()
    cli_env.setenv("MESSPLUS_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    line = one_error_line(run("worker", "route"))
    assert "has no schema, this messplus needs" in line and "messplus db upgrade" in line
    assert started == []


def test_a_worker_refuses_to_start_without_a_broker(
    run: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(app, "worker_main", calls.append)
    assert "broker redis://127.0.0.1:1/0 unreachable" in one_error_line(run("worker", "route"))
    assert calls == []
