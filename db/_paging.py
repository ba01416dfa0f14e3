"""Cursor pages, newest first, as the HTTP API lists files and batches.

The cursor is the last object of the previous page; the next page holds the objects
created before it (ties broken by id), so pages never shift while new objects arrive.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

__all__ = ["newest_first"]


def newest_first(
    session: Session,
    query: Select[Any],
    created: InstrumentedAttribute[Any],
    key: InstrumentedAttribute[Any],
    *,
    after: tuple[Any, Any] | None,
    limit: int,
) -> tuple[list[Any], bool]:
    """One page of `query`'s rows, newest first, after the row whose (created, key) is
    `after`; and whether more follow."""
    if after is not None:
        query = query.where(tuple_(created, key) < tuple_(*after))
    rows = list(session.scalars(query.order_by(created.desc(), key.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
