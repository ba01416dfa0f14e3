"""Fixtures giving every db/ test a migrated database on SQLite and on a real Postgres.

Postgres tests run against MESSPLUS_TEST_POSTGRES_URL (default: the local trust-auth
server), in throwaway databases named messplus_test_*, and are skipped, with the reason,
when the server cannot be reached. Tests that only need a migrated schema share one
Postgres database, emptied after each test; creating a database per test would triple the
run time. Tests of migrations themselves get fresh databases of their own.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker
from db.jobs import create_job
from db.migrate import upgrade
from db.models import Base, ZooModel
from db.routing import Decision, claim_queued, record_decisions
from db.tenants import create_tenant
from db.zoo import ModelSpec, upsert_models

POSTGRES_ADMIN_URL = os.environ.get(
    "MESSPLUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.services),
]

ZOO = [
    ModelSpec(
        name=name,
        triton_model_name=f"triton-{name}",
        position=position,
        cost_per_request=cost,
        cost_per_token=cost / 100,
        cost_unit="J",
    )
    for position, (name, cost) in enumerate(
        [("llama-1b", 1.0), ("llama-8b", 4.0), ("llama-70b", 20.0)]
    )
]


def _psycopg_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


class PostgresServer:
    """Creates and drops the throwaway databases of one test session."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._template_url: str | None = None
        self._shared_url: str | None = None

    def _execute(self, sql: str) -> None:
        with psycopg.connect(_psycopg_conninfo(self.admin_url), autocommit=True) as conn:
            conn.execute(sql)

    def create(self, *, migrated: bool) -> str:
        name = f"messplus_test_{uuid.uuid4().hex[:12]}"
        if migrated:
            template = make_url(self._migrated_template()).database
            self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            self._execute(f'CREATE DATABASE "{name}"')
        return _with_database(self.admin_url, name)

    def drop(self, url: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    def _migrated_template(self) -> str:
        if self._template_url is None:
            url = self.create(migrated=False)
            upgrade(url)
            self._template_url = url
        return self._template_url

    def shared(self) -> str:
        """The session's migrated database for tests that empty it afterwards."""
        if self._shared_url is None:
            self._shared_url = self.create(migrated=True)
        return self._shared_url

    def empty_shared(self) -> None:
        # DELETE, not TRUNCATE: on tables this small it is ten times faster.
        with psycopg.connect(_psycopg_conninfo(self.shared())) as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(f"DELETE FROM {table.name}")

    def close(self) -> None:
        for url in (self._shared_url, self._template_url):
            if url is not None:
                self.drop(url)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        psycopg.connect(_psycopg_conninfo(POSTGRES_ADMIN_URL), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        pytest.skip(f"Postgres unreachable at {make_url(POSTGRES_ADMIN_URL)!r}: {reason}")
    server = PostgresServer(POSTGRES_ADMIN_URL)
    yield server
    server.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file that tests copy rather than migrate again."""
    path = tmp_path_factory.mktemp("template") / "messplus.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def make_database(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., str]]:
    """A factory of databases on the test's backend, empty or migrated to head."""
    created: list[str] = []
    server: PostgresServer | None = None
    if backend == "postgresql":
        server = request.getfixturevalue("postgres")

    def make(*, migrated: bool = True) -> str:
        if server is not None:
            url = server.create(migrated=migrated)
        else:
            path = tmp_path_factory.mktemp("db") / "messplus.db"
            if migrated:
                shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), path)
            url = f"sqlite:///{path}"
        created.append(url)
        return url

    yield make
    if server is not None:
        for url in created:
            server.drop(url)


@pytest.fixture
def db_url(
    backend: str, make_database: Callable[..., str], request: pytest.FixtureRequest
) -> Iterator[str]:
    """A database migrated to head and empty, on each backend."""
    if backend == "sqlite":
        yield make_database()
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    yield server.shared()
    server.empty_shared()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def zoo_specs() -> list[ModelSpec]:
    """Three models, cheapest first."""
    return list(ZOO)


@pytest.fixture
def zoo(sessions: sessionmaker[Session], zoo_specs: list[ModelSpec]) -> list[ZooModel]:
    """The three models of `zoo_specs`, stored."""
    with sessions.begin() as session:
        return upsert_models(session, zoo_specs)


@pytest.fixture
def tenant_id(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        return create_tenant(session, "acme", 0.8, {"V": 0.001, "c": 0.1}).id


@pytest.fixture
def other_tenant_id(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        return create_tenant(session, "globex", 0.6).id


@pytest.fixture
def submit(sessions: sessionmaker[Session], tenant_id: int) -> Callable[[list[str]], list[int]]:
    """Submit prompts as a job of `tenant_id`; returns the request ids in order."""

    def submit_(prompts: list[str]) -> list[int]:
        with sessions.begin() as session:
            return create_job(session, tenant_id, prompts, "cli")[1]

    return submit_


@pytest.fixture
def route(sessions: sessionmaker[Session]) -> Callable[..., list[int]]:
    """Route requests the way the router does: claim, decide, record, in one transaction."""

    def route_(request_ids: list[int], model_id: int, *, explored: bool = False) -> list[int]:
        with sessions.begin() as session:
            claimed = claim_queued(session, request_ids)
            return record_decisions(
                session,
                [
                    Decision(
                        request_id=request.id,
                        tenant_id=request.tenant_id,
                        t=request.id,
                        probabilities=[0.5, 0.7, 0.9],
                        virtual_queue=0.0,
                        explored=explored,
                        chosen_model_id=model_id,
                    )
                    for request in claimed
                ],
            )

    return route_
