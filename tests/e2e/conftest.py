"""A real deployment on this machine: Postgres, Redis, a Triton replay zoo and Celery worker
processes, started per test module and torn down after it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "llama3-zoo"
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = ("127.0.0.1", 6379)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_services() -> None:
    if not _reachable("127.0.0.1", 5432):
        pytest.skip("Postgres is not reachable at 127.0.0.1:5432")
    if not _reachable(*REDIS):
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")


def shared_csv(name: str) -> Path:
    path = SHARED / f"{name}.csv"
    if not path.is_file():
        pytest.skip(f"shared data set {path} is absent (read from ../shared at run time)")
    return path


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, migrated Postgres database, dropped afterwards."""
    from sqlalchemy import create_engine, text

    from db.migrate import upgrade

    name = f"messplus_e2e_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of its own (number 11), emptied before and after."""
    import redis

    client = redis.Redis(*REDIS, db=11)
    client.flushdb()
    try:
        yield f"redis://{REDIS[0]}:{REDIS[1]}/11"
    finally:
        client.flushdb()
        client.close()


@dataclass
class Workers:
    """Celery worker processes of one deployment; stop() leaves none behind."""

    environment: dict[str, str]
    log_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, queue: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "worker",
                "-Q",
                queue,
                "--pool",
                "solo",
                "-n",
                f"{name}@%h",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


def worker_environment(database_url: str, broker_url: str, triton_url: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MESSPLUS_")}
    environment |= {
        "MESSPLUS_DATABASE_URL": database_url,
        "MESSPLUS_BROKER_URL": broker_url,
        "MESSPLUS_TRITON_URL": triton_url,
        "MESSPLUS_CHUNK_SIZE": "50",
    }
    return environment
