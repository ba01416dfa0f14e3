"""Ratings on their way in (issues 11.1, 12.2, 12.3, 12.5): only an answer that exists can
be rated, and every refusal says why; accepted ratings wait in order until applied."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.inference import mark_failed
from db.models import PendingRating, ZooModel, utcnow
from db.pending_ratings import (
    SubmittedRating,
    check_ratings,
    delete_pending,
    stale_pending,
    store_ratings,
    take_pending,
)
from tests.answered import store_answers

T0 = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def _rate(request_id: int, model: str | None = None, satisfied: bool = True) -> SubmittedRating:
    return SubmittedRating(request_id, satisfied, model, T0)


@pytest.fixture
def answer(sessions: sessionmaker[Session]) -> Callable[[int, int], None]:
    """Store one model's answer to a request, as a model worker does (done when served)."""

    def answer_(request_id: int, model_id: int) -> None:
        with sessions.begin() as session:
            store_answers(session, [(request_id, model_id)])

    return answer_


def test_only_answers_that_exist_are_rated_and_each_refusal_says_why(
    sessions: sessionmaker[Session],
    tenant_id: int,
    other_tenant_id: int,
    submit: Callable[[list[str]], list[int]],
    route: Callable[..., list[int]],
    answer: Callable[[int, int], None],
    zoo: list[ZooModel],
) -> None:
    small, medium, large = (m.name for m in zoo)
    done, explored, routed, queued, failed = submit(["a", "b", "c", "d", "e"])
    route([done, routed, failed], zoo[0].id)
    route([explored], zoo[2].id, explored=True)
    answer(done, zoo[0].id)
    answer(explored, zoo[0].id)  # an explored extra; the large model, served, not yet
    with sessions.begin() as session:
        mark_failed(session, [failed], f"{small}: unavailable")
    ratings = [
        _rate(done),  # the served answer
        _rate(done, small),  # the same, named
        _rate(explored, small),  # an explored answer, while the served one is pending
        _rate(done, large),  # 12.3: a model that never answered it
        _rate(explored),  # served answer not there yet
        _rate(explored, medium),  # explored: the medium model's answer may still come
        _rate(routed),  # 12.5: not answered yet
        _rate(queued, small),  # 12.5: not routed yet
        _rate(failed),  # 12.2: failed, nothing to rate
        _rate(999_999),
        _rate(done, "gpt-9"),
    ]
    with sessions.begin() as session:
        model_ids, bad = check_ratings(session, tenant_id, ratings)
    assert model_ids[:3] == [zoo[0].id] * 3
    assert bad == [
        (3, f"{large!r} did not answer request {done}: only an answer that exists is rated"),
        (4, f"request {explored} is not answered yet (routed): rate it once it is done"),
        (5, f"request {explored} has no answer from {medium!r} yet: rate it once it has"),
        (6, f"request {routed} is not answered yet (routed): rate it once it is done"),
        (7, f"request {queued} is not answered yet (queued): rate it once it is done"),
        (8, f"request {failed} failed: it has no answer to rate"),
        (9, "unknown request id 999999"),
        (10, "unknown model 'gpt-9'"),
    ]
    with sessions.begin() as session:  # another tenant's requests read as unknown
        _, bad = check_ratings(session, other_tenant_id, [_rate(done)])
    assert bad == [(0, f"unknown request id {done}")]


def test_pending_ratings_keep_their_order_until_applied(
    sessions: sessionmaker[Session],
    tenant_id: int,
    submit: Callable[[list[str]], list[int]],
    route: Callable[..., list[int]],
    answer: Callable[[int, int], None],
    zoo: list[ZooModel],
) -> None:
    (request_id,) = submit(["a"])
    route([request_id], zoo[1].id)
    answer(request_id, zoo[1].id)
    ratings = [_rate(request_id, satisfied=False), _rate(request_id, zoo[1].name)]
    with sessions.begin() as session:
        model_ids, bad = check_ratings(session, tenant_id, ratings)
        assert bad == []
        ids = store_ratings(session, tenant_id, ratings, model_ids)
    assert ids == sorted(ids) and len(ids) == 2
    with sessions.begin() as session:
        taken = take_pending(session, [ids[1], ids[0], 987_654])
        assert [(r.id, r.satisfied, r.model_id) for r in taken] == [
            (ids[0], False, zoo[1].id),
            (ids[1], True, zoo[1].id),
        ]
        assert stale_pending(session, 3600.0) == []
        # Untouched for an hour: the reconciler's pass publishes them again, and touches them.
        session.execute(update(PendingRating).values(updated_at=utcnow() - dt.timedelta(hours=2)))
    with sessions.begin() as session:
        assert stale_pending(session, 3600.0) == ids
        assert stale_pending(session, 3600.0) == []
        delete_pending(session, ids)
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(PendingRating)) == 0
        assert take_pending(session, ids) == []
