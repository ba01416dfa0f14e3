"""Queries for a reconciler that finds requests which stopped moving (lost messages)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import InvalidValue
from db.models import Request, RequestStatus, utcnow

__all__ = ["stuck_requests"]


def stuck_requests(session: Session, older_than_s: float, limit: int = 1000) -> list[Request]:
    """Unfinished requests (queued or routed) untouched for `older_than_s`, oldest first.

    Served by the (status, updated_at) index, so it stays cheap on a large table.
    """
    if older_than_s < 0 or limit < 1:
        raise InvalidValue(f"need older_than_s >= 0 and limit >= 1, got {older_than_s}, {limit}")
    cutoff = utcnow() - dt.timedelta(seconds=older_than_s)
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
