"""Run the packaged Alembic migrations from code, from any working directory.

The Alembic configuration is built here rather than read from an ini file, so an
installed messplus (no source checkout, any cwd) can migrate its database.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from db.engine import make_engine

__all__ = ["alembic_config", "current", "downgrade", "head", "upgrade"]


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for the packaged migrations, targeting `url` when given."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    if url is not None:
        # The value goes through ConfigParser interpolation: a '%' in a password must double.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The database's revision, None when it was never migrated."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    return ",".join(heads) if heads else None


def head() -> str | None:
    """The newest revision the packaged migrations provide."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
