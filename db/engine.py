"""Engines and sessions for Postgres (production) and SQLite (the embedded default).

The same queries run on both, so the differences are settled here, once:

- Only PostgreSQL (through psycopg 3) and SQLite are accepted; any other URL is refused
  with one message saying so, rather than with the ImportError of a driver never installed.
- `postgresql://` URLs are pinned to psycopg 3; SQLAlchemy would otherwise pick psycopg2.
- SQLite gets WAL (readers do not block the writer), enforced foreign keys and a busy
  timeout, and every transaction starts with BEGIN IMMEDIATE. SQLite has one writer; a
  deferred transaction that reads and then writes fails at once with "database is locked"
  when another writer committed in between, while an immediate one waits its turn. It also
  makes `db.sla.lock_sla_state` serialise routers the way SELECT ... FOR UPDATE does on
  Postgres.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import Pool

from db.errors import BadDatabaseUrl

__all__ = [
    "DATABASE_URL_ENV",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SUPPORTED_DATABASES",
    "database_url_from_env",
    "make_engine",
    "make_sessionmaker",
    "normalize_database_url",
    "sqlite_file",
]

DATABASE_URL_ENV = "MESSPLUS_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SUPPORTED_DATABASES = (
    "PostgreSQL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE, driven by psycopg 3) "
    "or SQLite (sqlite:///PATH)"
)
_DEFAULT_SQLITE_PATH = Path(".messplus") / "messplus.db"
# Backend -> the drivers messplus installs and tests (None: the backend's default driver).
_DRIVERS = {"postgresql": (None, "psycopg"), "sqlite": (None, "pysqlite")}


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The configured database, or a SQLite file under ./.messplus so a first run just works.

    The default is made absolute so that a later chdir (Celery daemons, Alembic) still
    opens the same file. Naming it creates nothing: only `messplus db upgrade` does.
    """
    url = (os.environ if environ is None else environ).get(DATABASE_URL_ENV, "").strip()
    if url:
        return url
    return f"sqlite:///{_DEFAULT_SQLITE_PATH.resolve()}"


def normalize_database_url(url: str | URL) -> URL:
    """Parse `url`, pinning plain `postgresql://` to the psycopg 3 driver.

    Raises BadDatabaseUrl for a string that is no URL, and for a URL of any database but
    PostgreSQL (psycopg 3) and SQLite: the message names the ones supported. The URL is
    shown with its password masked; a string that does not parse is not shown at all, as
    it may hold a password that cannot be told apart.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise BadDatabaseUrl(f"not a database URL; expected {SUPPORTED_DATABASES}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if (driver or None) not in _DRIVERS.get(backend, ()):
        shown = parsed.render_as_string(hide_password=True)
        raise BadDatabaseUrl(
            f"unsupported database {shown}: messplus runs on {SUPPORTED_DATABASES}"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_file(url: str | URL) -> Path | None:
    """The file behind a SQLite URL; None for an in-memory database or another backend."""
    parsed = normalize_database_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(url: str | URL, *, poolclass: type[Pool] | None = None) -> Engine:
    """An engine with the per-backend settings db/ relies on.

    `poolclass` lets short-lived callers (migrations, CLI) pass NullPool so no connection
    outlives the command. Statement parameters are kept out of exception messages: they
    carry prompts and answers, and an error's text ends up in logs and dead letters.
    """
    parsed = normalize_database_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    engine = create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit.

    Workers commit a unit of work and then publish ids or return rows; expiring on commit
    would turn each attribute access afterwards into a query (or an error once detached).
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module (it skips it before SELECT) ...
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # ... and emit it ourselves, taking the write lock up front.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
