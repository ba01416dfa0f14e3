"""A real deployment on this machine: Postgres, Redis, a Triton replay zoo and Celery worker
processes, started per test module and torn down after it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "llama3-zoo"
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = ("127.0.0.1", 6379)
BENCH_REDIS_DB = 12  # bench/pipeline.py's own


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
    from db.scratch import scratch_database

    with scratch_database(POSTGRES_ADMIN, "messplus_e2e") as url:
        yield url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of its own, emptied before and after."""
    with claimed_redis_database() as url:
        yield url


@contextmanager
def claimed_redis_database() -> Iterator[str]:
    """The URL of a Redis database of this process's own, emptied before and after.

    The number is claimed with SET NX in database 0 so that test runs side by side (two
    checkouts, a benchmark and a test) never flush each other's queues."""
    import os

    import redis

    claims = redis.Redis(*REDIS, db=0)
    number = next(
        (
            n
            for n in range(1, 16)
            if n != BENCH_REDIS_DB
            and claims.set(f"messplus-test-db:{n}", os.getpid(), nx=True, ex=3600)
        ),
        None,
    )
    if number is None:
        pytest.skip("every Redis database 1-15 is claimed by another test run")
    client = redis.Redis(*REDIS, db=number)
    client.flushdb()
    try:
        yield f"redis://{REDIS[0]}:{REDIS[1]}/{number}"
    finally:
        client.flushdb()
        client.close()
        claims.delete(f"messplus-test-db:{number}")
        claims.close()
