"""Stuck requests: unfinished and untouched for too long, oldest first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from db.errors import InvalidValue
from db.inference import mark_failed
from db.models import Request, ZooModel, utcnow
from db.reconciler import stuck_requests


def test_stuck_requests(
    sessions: sessionmaker[Session],
    submit: Callable[[list[str]], list[int]],
    zoo: list[ZooModel],
    route: Callable[..., list[int]],
) -> None:
    queued, routed, failed, fresh = submit(["a", "b", "c", "d"])
    route([routed], zoo[0].id)
    with sessions.begin() as session:
        mark_failed(session, [failed], "gone")
        now = utcnow()
        for request_id, age_s in [(queued, 600), (routed, 900), (failed, 1200), (fresh, 5)]:
            session.execute(
                update(Request)
                .where(Request.id == request_id)
                .values(updated_at=now - dt.timedelta(seconds=age_s))
            )
    with sessions.begin() as session:
        assert [r.id for r in stuck_requests(session, older_than_s=60)] == [routed, queued]
        assert [r.id for r in stuck_requests(session, older_than_s=60, limit=1)] == [routed]
        assert [r.id for r in stuck_requests(session, older_than_s=800)] == [routed]
        with pytest.raises(InvalidValue):
            stuck_requests(session, older_than_s=-1)


def test_updates_refresh_updated_at(
    sessions: sessionmaker[Session],
    submit: Callable[[list[str]], list[int]],
    zoo: list[ZooModel],
    route: Callable[..., list[int]],
) -> None:
    ids = submit(["a"])
    with sessions.begin() as session:
        session.execute(update(Request).values(updated_at=utcnow() - dt.timedelta(hours=1)))
    route(ids, zoo[0].id)  # claiming and routing touch the row
    with sessions.begin() as session:
        assert stuck_requests(session, older_than_s=60) == []
