"""Queries for a reconciler that finds requests which stopped moving (lost messages)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import InvalidValue
from db.models import Request, RequestStatus, utcnow

__all__ = ["stuck_requests"]

# Timeouts beyond this are taken as this: no request is a century old, and a datetime
# cannot go back much further than a few thousand years.
_LONGEST_S = 100 * 365.25 * 86400


def stuck_requests(session: Session, older_than_s: float, limit: int = 1000) -> list[Request]:
    """Unfinished requests (queued or routed) untouched for `older_than_s`, oldest first.

    Served by the (status, updated_at) index, so it stays cheap on a large table.
    """
    if not older_than_s >= 0 or limit < 1:  # `not >=` refuses NaN too
        raise InvalidValue(f"need older_than_s >= 0 and limit >= 1, got {older_than_s}, {limit}")
    cutoff = utcnow() - dt.timedelta(seconds=min(older_than_s, _LONGEST_S))
    return list(
        session.scalars(
            select(Request)
            .where(
                Request.status.in_([RequestStatus.QUEUED.value, RequestStatus.ROUTED.value]),
                Request.updated_at < cutoff,
            )
            .order_by(Request.updated_at)
            .limit(limit)
        )
    )
