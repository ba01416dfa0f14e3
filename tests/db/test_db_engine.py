"""Engine setup: URL defaults, the psycopg 3 driver, and SQLite's safety settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from db.engine import (
    DATABASE_URL_ENV,
    SQLITE_BUSY_TIMEOUT_MS,
    database_url_from_env,
    make_engine,
    normalize_database_url,
    sqlite_file,
)
from db.errors import BadDatabaseUrl


def test_plain_postgresql_urls_use_psycopg3() -> None:
    url = normalize_database_url("postgresql://u:p@db.example:5432/messplus")
    assert url.drivername == "postgresql+psycopg"
    assert url.password == "p"
    assert normalize_database_url("postgresql+psycopg://h/d").drivername == "postgresql+psycopg"
    assert normalize_database_url("sqlite:///x.db").drivername == "sqlite"


def test_default_url_is_a_sqlite_file_under_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    url = database_url_from_env()
    assert url == f"sqlite:///{tmp_path.resolve() / '.messplus' / 'messplus.db'}"
    # Naming the default creates nothing: only `messplus db upgrade` makes a database.
    assert not (tmp_path / ".messplus").exists()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://root@127.0.0.1/x", "unsupported database mysql://root@127.0.0.1/x"),
        (
            "postgresql+psycopg2://u:secret@h/d",
            "unsupported database postgresql+psycopg2://u:***@h/d",
        ),
        ("oracle://scott:tiger@h/d", "PostgreSQL (postgresql://"),
        ("notaurl", "not a database URL"),
        ("", "not a database URL"),
        ("postgresql://u:secret@h:99999x/d", "not a database URL"),
    ],
)
def test_only_postgres_and_sqlite_urls_are_accepted(url: str, says: str) -> None:
    with pytest.raises(BadDatabaseUrl) as caught:
        normalize_database_url(url)
    assert says in str(caught.value)
    assert "secret" not in str(caught.value) and "tiger" not in str(caught.value)


def test_sqlite_file_names_the_file_of_a_sqlite_url(tmp_path: Path) -> None:
    assert sqlite_file(f"sqlite:///{tmp_path}/m.db") == tmp_path / "m.db"
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://h/d") is None


def test_environment_url_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://postgres@127.0.0.1/messplus")
    monkeypatch.chdir(tmp_path)
    assert database_url_from_env() == "postgresql://postgres@127.0.0.1/messplus"
    assert not (tmp_path / ".messplus").exists()


def test_engine_settings_per_backend(backend: str, engine: Engine) -> None:
    with engine.connect() as connection:
        if backend == "postgresql":
            assert engine.dialect.driver == "psycopg"
        else:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS


def test_sqlite_transactions_take_the_write_lock_up_front(tmp_path: Path) -> None:
    """Even a transaction that only reads holds the write lock, so writers queue behind it."""
    path = tmp_path / "lock.db"
    engine = make_engine(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT 1")
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the transaction ended
        other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def test_errors_do_not_quote_statement_parameters(tmp_path: Path) -> None:
    # Parameters carry prompts; an error's text reaches logs and dead letters.
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (a INTEGER PRIMARY KEY)"))
    with pytest.raises(IntegrityError) as raised, engine.begin() as connection:
        for _ in range(2):
            connection.execute(text("INSERT INTO t (a) VALUES (:a)"), {"a": 424242})
    assert "424242" not in str(raised.value)
    engine.dispose()
