"""A throw-away Postgres database, migrated to head: for end-to-end tests and benchmarks
that need a real Postgres of their own without touching anyone else's data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text

from db.migrate import upgrade

__all__ = ["scratch_database"]


@contextmanager
def scratch_database(admin_url: str, prefix: str = "messplus_scratch") -> Iterator[str]:
    """Create a uniquely named database on admin_url's server, migrate it, yield its URL,
    and drop it (closing any connection left open) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
