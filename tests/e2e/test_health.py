"""Real workers answer `messplus health` with their queues; a model worker whose Triton no
longer serves its model says so (exit 1), where `inspect ping` would still say pong; and
`messplus submit --wait` names the queue of a stalled job that no worker consumes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from db.models import ZooModel
from router.synthetic import synthetic_zoo
from tests.e2e.conftest import claimed_redis_database, require_services
from workers import queues
from workers.cli._wait import TIMEOUT_EXIT
from workers.fleet import Fleet, local_deployment
from workers.provision import add_tenant, register_zoo
from workers.zoo_server import ZooProcess, start_zoo_process

pytestmark = pytest.mark.services

WAIT_S = 120.0


@dataclass
class Deployment:
    fleet: Fleet
    zoo: ZooProcess
    sessions: sessionmaker[Session]
    work: Path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A router and a worker for tiny-1b only; tenant acme explores every first request."""
    require_services()
    work = tmp_path_factory.mktemp("health")
    url = f"sqlite:///{work / 'messplus.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        register_zoo(session, synthetic_zoo(2000, seed=0).data)
        add_tenant(session, "acme", 0.6, {"c": 1.0})
    with (
        claimed_redis_database() as broker_url,
        start_zoo_process(None) as zoo,
        local_deployment(
            work / "logs", database_url=url, broker_url=broker_url, triton_url=zoo.grpc_url
        ) as fleet,
    ):
        fleet.start("tiny", [queues.model_queue("tiny-1b")])
        fleet.start("router", [queues.ROUTE])
        yield Deployment(fleet, zoo, sessions, work)
    engine.dispose()


def _messplus(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env=deployment.fleet.environment,
        cwd=deployment.work,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )


def test_wait_names_the_model_queues_no_worker_consumes(deployment: Deployment) -> None:
    (deployment.work / "one.jsonl").write_text('"hello"\n')
    # The router runs; the request is explored (c = 1): sent to the models up to the rung's
    # upgrade model, small-8b on a fresh tenant, and served by it; nobody consumes its queue.
    result = _messplus(
        deployment, "submit", "one.jsonl", "--tenant", "acme", "--wait", "--timeout", "20",
        "--poll-interval", "0.2",
    )  # fmt: skip
    assert result.returncode == TIMEOUT_EXIT, result
    assert "no worker seems to consume the model.small-8b queue (1 message(s)" in result.stderr
    assert "model.large-70b" not in result.stderr  # exploring did not ask it
    assert "the route queue" not in result.stderr and "model.tiny-1b queue" not in result.stderr
    assert "(0 queued, 1 routed, 0 done, 0 failed)" in result.stderr


def test_a_model_worker_reports_a_model_triton_stopped_serving(deployment: Deployment) -> None:
    deadline = time.monotonic() + WAIT_S
    while len((result := _messplus(deployment, "health")).stdout.splitlines()) < 2:
        assert time.monotonic() < deadline, f"{result}\n{deployment.fleet.logs()}"
    assert result.returncode == 0, result
    answers = sorted(line.split()[1:] for line in result.stdout.splitlines())
    assert answers == [["model.tiny-1b", "ok"], ["route", "ok"]]

    with deployment.sessions.begin() as session:  # as if Triton's repository lost the model
        session.execute(
            update(ZooModel).where(ZooModel.name == "tiny-1b").values(triton_model_name="gone")
        )
    result = _messplus(deployment, "health")
    assert result.returncode == 1, result
    tiny = next(line for line in result.stdout.splitlines() if "model.tiny-1b" in line)
    assert f"gone is not served by Triton at {deployment.zoo.grpc_url}" in tiny
