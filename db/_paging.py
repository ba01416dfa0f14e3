"""Reading many rows a part at a time: cursor pages, newest first, as the HTTP API lists
files and batches, and streamed batches, as the nightly retraining reads every rating.

The cursor is the last object of the previous page; the next page holds the objects
created before it (ties broken by id), so pages never shift while new objects arrive.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVarTuple

from sqlalchemy import Row, Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from db.errors import InvalidValue

__all__ = ["newest_first", "stream"]

_Columns = TypeVarTuple("_Columns")


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


def stream(
    session: Session, query: Select[*_Columns], batch_size: int
) -> Iterator[Sequence[Row[*_Columns]]]:
    """`query`'s rows in batches of at most `batch_size`, memory bounded however large the
    table (Postgres streams through a server-side cursor). The session's transaction stays
    open until the iterator is exhausted or closed."""
    if batch_size < 1:
        raise InvalidValue(f"batch_size must be positive, got {batch_size}")
    result = session.execute(query.execution_options(yield_per=batch_size))
    try:
        yield from result.partitions()
    finally:
        result.close()
