"""Engines and sessions for Postgres (production) and SQLite (the embedded default).

The same queries run on both, so the differences are settled here, once:

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
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import Pool

__all__ = [
    "DATABASE_URL_ENV",
    "SQLITE_BUSY_TIMEOUT_MS",
    "database_url_from_env",
    "make_engine",
    "make_sessionmaker",
    "normalize_database_url",
]

DATABASE_URL_ENV = "MESSPLUS_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_DEFAULT_SQLITE_PATH = Path(".messplus") / "messplus.db"


def database_url_from_env() -> str:
    """The configured database, or a SQLite file under ./.messplus so a first run just works.

    The default is made absolute so that a later chdir (Celery daemons, Alembic) still
    opens the same file.
    """
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if url:
        return url
    path = _DEFAULT_SQLITE_PATH.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def normalize_database_url(url: str | URL) -> URL:
    """Parse `url`, pinning plain `postgresql://` to the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


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
