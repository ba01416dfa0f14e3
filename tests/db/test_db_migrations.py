"""The schema exists only through migrations, and the migrations match the models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from db.engine import DATABASE_URL_ENV, make_engine
from db.migrate import alembic_config, current, downgrade, head, upgrade
from db.models import Base


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_and_downgrade_to_empty(make_database: Callable[..., str]) -> None:
    url = make_database(migrated=False)
    assert current(url) is None

    upgrade(url)
    assert current(url) == head() == "0009"
    assert _tables(url) == set(Base.metadata.tables) | {"alembic_version"}

    downgrade(url)
    assert current(url) is None
    assert _tables(url) <= {"alembic_version"}

    upgrade(url)  # and back up again: the downgrade left nothing behind that collides
    assert current(url) == head()


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_migrations_work_from_any_directory(
    make_database: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_database(migrated=False)
    monkeypatch.chdir(tmp_path)
    upgrade(url)
    assert current(url) == head()


def test_env_falls_back_to_the_environment_url(
    make_database: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_database(migrated=False)
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    command.upgrade(alembic_config(), "head")
    assert current(url) == head()


def test_offline_mode_renders_sql(
    make_database: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_database(migrated=False)
    command.upgrade(alembic_config(url), "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE requests" in sql
    assert current(url) is None  # offline mode only prints


def test_ini_file_points_at_the_packaged_migrations() -> None:
    ini = Path(__file__).parents[2] / "migrations" / "alembic.ini"
    assert ScriptDirectory.from_config(Config(str(ini))).get_current_head() == head()
