"""Flower, started as compose.yaml starts it (`celery -A workers.app flower`), sees a worker
of the fleet through the same broker: what an operator opens first when a queue backs up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import require_services
from workers import queues
from workers.fleet import local_deployment
from workers.zoo_server import _free_port

pytestmark = pytest.mark.services


@contextmanager
def flower(environment: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """Flower's base URL while it runs in a session of its own, ended with everything in it."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "flower",
                "--address=127.0.0.1",
                f"--port={port}",
            ],
            # Flower 2 serves its API only with authentication or this opt-out.
            env=environment | {"FLOWER_UNAUTHENTICATED_API": "true"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def workers_seen(base_url: str) -> set[str]:
    """Worker names Flower finds by asking the broker now (refresh runs `inspect`); none
    while Flower is still starting."""
    try:
        with urllib.request.urlopen(f"{base_url}/api/workers?refresh=1", timeout=30) as reply:
            return set(json.load(reply))
    except (urllib.error.URLError, ConnectionError):
        return set()


def test_flower_sees_a_fleet_worker_on_the_same_broker(redis_url: str, tmp_path: Path) -> None:
    require_services()
    with local_deployment(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'messplus.db'}", broker_url=redis_url
    ) as fleet:
        fleet.start("route", [queues.ROUTE])
        with flower(fleet.environment, _free_port("127.0.0.1"), tmp_path / "flower.log") as url:
            deadline = time.monotonic() + 180
            seen: set[str] = set()
            while time.monotonic() < deadline:
                seen = workers_seen(url)
                if any(name.startswith("route@") for name in seen):
                    break
                time.sleep(1.0)
            flower_log = (tmp_path / "flower.log").read_text(errors="replace")[-3000:]
            assert any(name.startswith("route@") for name in seen), (
                f"Flower saw {sorted(seen)}\n--- flower.log\n{flower_log}\n{fleet.logs()}"
            )
