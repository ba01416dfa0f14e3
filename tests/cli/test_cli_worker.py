"""`messplus worker`: the `celery worker` arguments each stage gets (no worker is started;
tests/e2e runs real ones)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.cli.conftest import Run, one_error_line
from workers.app import app


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv of every worker the command would have started."""
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
