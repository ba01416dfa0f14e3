"""Fixtures for the `messplus` client commands: a migrated database per test on SQLite and
on a real Postgres, an isolated Redis database as broker, and a runner of the real entry
point.

Commands read their configuration from MESSPLUS_* variables once per process
(workers.runtime caches it), so every test gets a clean environment and fresh caches.
The Celery app reads its broker URL once too; the fixtures point it at the test's broker
(or, for tests that must not publish, at a port nobody listens on) and drop its connection
pools, so no test can publish into a developer's real queues.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from tests.db.conftest import POSTGRES_ADMIN_URL, PostgresServer
from tests.e2e.conftest import REDIS, claimed_redis_database
from workers import runtime
from workers.app import app, use_broker
from workers.cli import main
from workers.zoo_server import ZooProcess, start_zoo_process

# Nothing listens on port 1: a test that publishes without asking for `broker` fails loudly,
# and one that asks Triton without asking for `triton` never reaches someone else's.
NO_BROKER_URL = "redis://127.0.0.1:1/0"
NO_TRITON_URL = "grpc://127.0.0.1:1"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.services),
]


@dataclass(frozen=True)
class Run:
    """What one `messplus` invocation returned and printed."""

    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql")
    try:
        psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        pytest.skip(f"Postgres unreachable at {url!r}: {reason}")
    server = PostgresServer(POSTGRES_ADMIN_URL)
    yield server
    server.close()


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file that tests copy rather than migrate again."""
    path = tmp_path_factory.mktemp("template") / "messplus.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database migrated to head, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "messplus.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), path)
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    yield server.shared()
    server.empty_shared()


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Only this test's MESSPLUS_* variables, fresh process caches, no reachable broker.

    Yields the monkeypatch so tests can set more variables (runtime caches are cleared
    by `run` before each command).
    """
    for key in [k for k in os.environ if k.startswith("MESSPLUS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MESSPLUS_DATABASE_URL", db_url)
    monkeypatch.setenv("MESSPLUS_BROKER_URL", NO_BROKER_URL)
    monkeypatch.setenv("MESSPLUS_TRITON_URL", NO_TRITON_URL)
    previous = app.conf.broker_url
    use_broker(NO_BROKER_URL)
    yield monkeypatch
    runtime.close()
    use_broker(previous)


@pytest.fixture
def broker(cli_env: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """A Redis database of this test run's own as the broker (claimed, so checkouts testing
    side by side never flush each other's queues); the client inspects its queues."""
    try:
        redis.Redis(*REDIS, socket_connect_timeout=3).ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"Redis unreachable at {REDIS[0]}:{REDIS[1]}: {exc}")
    with claimed_redis_database() as url:
        client = redis.Redis.from_url(url)
        cli_env.setenv("MESSPLUS_BROKER_URL", url)
        use_broker(url)
        yield client
        use_broker(NO_BROKER_URL)
        client.close()


@pytest.fixture(scope="session")
def zoo_server() -> Iterator[ZooProcess]:
    """The synthetic zoo on a real CPU Triton, started once for the tests that ask for it."""
    with start_zoo_process(None) as zoo:
        yield zoo


@pytest.fixture
def triton(cli_env: pytest.MonkeyPatch, zoo_server: ZooProcess) -> ZooProcess:
    """Commands of this test talk to the synthetic zoo's Triton (MESSPLUS_TRITON_URL)."""
    cli_env.setenv("MESSPLUS_TRITON_URL", zoo_server.grpc_url)
    return zoo_server


@pytest.fixture
def run(cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run `messplus ARGS...` through the real entry point, in this process."""

    def run_(*args: str) -> Run:
        runtime.close()  # settings are re-read from the environment, as a new process would
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run_


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """The test's own view of the database, to arrange rows and check what commands did."""
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def one_error_line(result: Run) -> str:
    """The single `messplus: error:` line of a refused command (exit status 2)."""
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("messplus: error: "), result.err
    return lines[0]
