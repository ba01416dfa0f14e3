"""`messplus worker`: the `celery worker` arguments each stage gets, and what a worker
checks before it starts (no worker is started; tests/e2e runs real ones)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from router.dataset import write_csv
from router.synthetic import synthetic_zoo
from tests.cli.conftest import Run, one_error_line
from workers.app import app
from workers.zoo_server import ZooProcess


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
    run: Callable[..., Run], started: list[list[str]], triton: ZooProcess
) -> None:
    assert "unknown model 'tiny-1b'" in one_error_line(run("worker", "model", "tiny-1b"))
    assert run("zoo", "register").code == 0
    result = run("worker", "model", "tiny-1b")
    assert result.code == 0, result
    assert result.out == "messplus: starting a worker for queue model.tiny-1b\n"
    assert started == [_quiet_solo("model.tiny-1b")]


def test_a_model_worker_refuses_to_start_when_triton_does_not_serve_its_model(
    run: Callable[..., Run], started: list[list[str]], triton: ZooProcess, tmp_path: Path
) -> None:
    data = synthetic_zoo(40, seed=5, models=("b-small", "a-big"), skills=(0, 1), cost_j=(1, 9))
    write_csv(data.data, tmp_path / "zoo.csv")
    assert run("zoo", "register", "--data", str(tmp_path / "zoo.csv"), "--no-check").code == 0
    line = one_error_line(run("worker", "model", "b-small"))
    assert line.startswith("messplus: error: not starting a worker for model b-small: ")
    assert f"b-small is not served by Triton at {triton.grpc_url}" in line
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
