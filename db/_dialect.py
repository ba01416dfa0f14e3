"""The one place db/ branches on the backend: INSERT ... ON CONFLICT.

Postgres and SQLite spell ON CONFLICT the same way but SQLAlchemy exposes it on each
dialect's own `insert`; everything else in db/ is portable Core or ORM.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

__all__ = ["upsert_insert"]


def upsert_insert(session: Session, entity: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT for `entity` that supports `on_conflict_do_nothing` on this session's backend."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(entity)
    if name == "sqlite":
        return sqlite.insert(entity)
    raise NotImplementedError(f"ON CONFLICT is not wired for the {name!r} backend")
