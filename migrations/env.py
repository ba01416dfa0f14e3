"""Alembic environment: run migrations against the URL from the config or the environment.

`db.migrate` sets sqlalchemy.url programmatically; the `alembic` command falls back to
MESSPLUS_DATABASE_URL like the workers do. NullPool: a migration run must leave no pooled
connection behind. SQLite cannot ALTER most things, so its migrations use batch mode.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.pool import NullPool

from db.engine import database_url_from_env, make_engine, normalize_database_url
from db.models import Base, UtcDateTime

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or database_url_from_env()


def _render_item(kind: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    """Autogenerate plain DateTime for UtcDateTime: revisions must not import db.models,
    which keeps changing after the revision is written."""
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (alembic upgrade --sql)."""
    url = normalize_database_url(_url())
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                render_item=_render_item,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
