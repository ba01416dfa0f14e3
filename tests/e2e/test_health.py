"""`messplus health`: real workers answer with their queues, and a model worker whose Triton
no longer serves its model says so (exit 1), while `inspect ping` would still say pong."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from db.models import ZooModel
from router.synthetic import synthetic_zoo
from tests.e2e.conftest import claimed_redis_database, require_services
from workers import queues
from workers.fleet import local_deployment
from workers.provision import register_zoo
from workers.zoo_server import start_zoo_process

pytestmark = pytest.mark.services

WAIT_S = 120.0


def _health(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "health", "--timeout", "3"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )


def test_a_model_worker_reports_a_model_triton_stopped_serving(tmp_path: Path) -> None:
    require_services()
    url = f"sqlite:///{tmp_path / 'messplus.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    data = synthetic_zoo(2000, seed=0).data
    with sessions.begin() as session:
        register_zoo(session, data)
    with (
        claimed_redis_database() as broker_url,
        start_zoo_process(None) as zoo,
        local_deployment(
            tmp_path / "logs", database_url=url, broker_url=broker_url, triton_url=zoo.grpc_url
        ) as fleet,
    ):
        fleet.start("tiny", [queues.model_queue("tiny-1b")])
        fleet.start("router", [queues.ROUTE])
        deadline = time.monotonic() + WAIT_S
        while len((result := _health(fleet.environment)).stdout.splitlines()) < 2:
            assert time.monotonic() < deadline, f"{result}\n{fleet.logs()}"
        assert result.returncode == 0, result
        answers = sorted(line.split()[1:] for line in result.stdout.splitlines())
        assert answers == [["model.tiny-1b", "ok"], ["route", "ok"]]

        with sessions.begin() as session:  # as if Triton's repository lost the model
            session.execute(
                update(ZooModel).where(ZooModel.name == "tiny-1b").values(triton_model_name="gone")
            )
        result = _health(fleet.environment)
        assert result.returncode == 1, result
        tiny = next(line for line in result.stdout.splitlines() if "model.tiny-1b" in line)
        assert f"gone is not served by Triton at {zoo.grpc_url}" in tiny
    engine.dispose()
