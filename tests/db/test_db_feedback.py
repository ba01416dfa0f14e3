"""Ratings: new, duplicate, changed or stale (older than the one stored), never for someone
else's request; streamed for training."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.errors import UnknownModel, UnknownRequest
from db.feedback import (
    FeedbackExample,
    FeedbackOutcome,
    FeedbackResult,
    Rating,
    iter_feedback_batches,
    upsert_feedback,
)
from db.models import Feedback, ZooModel
from db.sla import SlaTally, recompute_sla_from_feedback

T0 = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def rating(
    request_id: int, model_id: int, satisfied: bool, seq: int = 0, minute: int = 0
) -> Rating:
    """A rating given `minute` minutes after T0, submitted as number `seq`."""
    return Rating(request_id, model_id, satisfied, T0 + dt.timedelta(minutes=minute), seq)


@pytest.fixture
def request_ids(
    submit: Callable[[list[str]], list[int]],
    zoo: list[ZooModel],
    route: Callable[..., list[int]],
) -> list[int]:
    """Two requests served by the cheapest model."""
    ids = submit(["first", "second"])
    route(ids, zoo[0].id)
    return ids


def test_new_duplicate_changed(
    sessions: sessionmaker[Session], tenant_id: int, request_ids: list[int], zoo: list[ZooModel]
) -> None:
    first = request_ids[0]
    served = rating(first, zoo[0].id, True)
    explored = rating(first, zoo[2].id, False)
    with sessions.begin() as session:
        assert upsert_feedback(session, tenant_id, [served, explored]) == [
            FeedbackResult(served, FeedbackOutcome.NEW, None, served=True),
            FeedbackResult(explored, FeedbackOutcome.NEW, None, served=False),
        ]
    with sessions.begin() as session:
        assert upsert_feedback(session, tenant_id, [served]) == [
            FeedbackResult(served, FeedbackOutcome.DUPLICATE, True, served=True)
        ]
    flipped = rating(first, zoo[0].id, False, seq=1)
    with sessions.begin() as session:
        assert upsert_feedback(session, tenant_id, [flipped]) == [
            FeedbackResult(flipped, FeedbackOutcome.CHANGED, True, served=True)
        ]
    with sessions.begin() as session:
        rows = session.execute(
            select(Feedback.request_id, Feedback.model_id, Feedback.satisfied, Feedback.tenant_id)
        ).all()
        assert sorted(tuple(r) for r in rows) == [
            (first, zoo[0].id, False, tenant_id),
            (first, zoo[2].id, False, tenant_id),
        ]
        assert all(f.updated_at >= f.received_at for f in session.scalars(select(Feedback)))


def test_repeats_inside_one_batch(
    sessions: sessionmaker[Session], tenant_id: int, request_ids: list[int], zoo: list[ZooModel]
) -> None:
    yes = rating(request_ids[1], zoo[0].id, True, seq=1)
    no = rating(request_ids[1], zoo[0].id, False, seq=2)
    with sessions.begin() as session:
        outcomes = [
            (r.outcome, r.previous) for r in upsert_feedback(session, tenant_id, [yes, yes, no])
        ]
    assert outcomes == [
        (FeedbackOutcome.NEW, None),
        (FeedbackOutcome.DUPLICATE, True),
        (FeedbackOutcome.CHANGED, True),
    ]
    with sessions.begin() as session:
        assert session.scalars(select(Feedback.satisfied)).all() == [False]


@pytest.mark.parametrize(
    "delivered",
    [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1), (0, 2, 1), (1, 0, 2)],
    ids=lambda order: "".join(map(str, order)),
)
def test_the_newest_rating_wins_whatever_order_they_are_delivered_in(
    sessions: sessionmaker[Session],
    tenant_id: int,
    request_ids: list[int],
    zoo: list[ZooModel],
    delivered: tuple[int, int, int],
) -> None:
    """Issue 12.4: no, then yes, then yes again; a late delivery of an older rating (a
    redelivered message after its worker died) never replaces a newer one."""
    given = [
        rating(request_ids[0], zoo[0].id, False, seq=7, minute=0),
        rating(request_ids[0], zoo[0].id, True, seq=3, minute=5),  # rated later, sent earlier
        rating(request_ids[0], zoo[0].id, True, seq=9, minute=5),
    ]
    for index in delivered:
        with sessions.begin() as session:
            upsert_feedback(session, tenant_id, [given[index]])
    with sessions.begin() as session:
        stored = session.scalars(select(Feedback)).one()
        assert (stored.satisfied, stored.rated_at, stored.rating_seq) == (
            True,
            given[2].rated_at,
            9,
        )


def test_an_older_rating_is_stale_and_changes_nothing(
    sessions: sessionmaker[Session], tenant_id: int, request_ids: list[int], zoo: list[ZooModel]
) -> None:
    newer = rating(request_ids[0], zoo[0].id, True, seq=2, minute=1)
    older = rating(request_ids[0], zoo[0].id, False, seq=1)
    with sessions.begin() as session:
        upsert_feedback(session, tenant_id, [newer])
    with sessions.begin() as session:
        assert upsert_feedback(session, tenant_id, [older]) == [
            FeedbackResult(older, FeedbackOutcome.STALE, True, served=True)
        ]
        assert session.scalars(select(Feedback.satisfied)).all() == [True]


def test_unknown_request_is_named_and_nothing_is_stored(
    sessions: sessionmaker[Session],
    tenant_id: int,
    other_tenant_id: int,
    request_ids: list[int],
    zoo: list[ZooModel],
) -> None:
    good = rating(request_ids[0], zoo[0].id, True)
    with sessions.begin() as session, pytest.raises(UnknownRequest, match="987654") as caught:
        upsert_feedback(session, tenant_id, [good, rating(987654, zoo[0].id, True)])
    assert caught.value.request_ids == [987654]
    # Someone else's request looks exactly like a missing one.
    with sessions.begin() as session, pytest.raises(UnknownRequest, match=str(request_ids[0])):
        upsert_feedback(session, other_tenant_id, [good])
    with sessions.begin() as session, pytest.raises(UnknownModel):
        upsert_feedback(session, tenant_id, [rating(request_ids[0], 999, True)])
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(Feedback)) == 0


def test_recompute_counts_only_served_answers(
    sessions: sessionmaker[Session], tenant_id: int, request_ids: list[int], zoo: list[ZooModel]
) -> None:
    first, second = request_ids
    with sessions.begin() as session:
        assert recompute_sla_from_feedback(session, tenant_id) == SlaTally(0, 0)
        upsert_feedback(
            session,
            tenant_id,
            [
                rating(first, zoo[0].id, True),
                rating(second, zoo[0].id, False),
                rating(first, zoo[1].id, False),  # explored, not served
            ],
        )
        assert recompute_sla_from_feedback(session, tenant_id) == SlaTally(2, 1)


def test_feedback_streams_in_bounded_batches(
    sessions: sessionmaker[Session],
    tenant_id: int,
    submit: Callable[[list[str]], list[int]],
    zoo: list[ZooModel],
    route: Callable[..., list[int]],
) -> None:
    ids = submit([f"prompt {i}" for i in range(9)])
    route(ids, zoo[2].id, explored=True)
    ratings = [rating(r, m.id, (r + m.position) % 2 == 0) for r in ids for m in zoo]
    with sessions.begin() as session:
        upsert_feedback(session, tenant_id, ratings)
    with sessions.begin() as session:
        batches = list(iter_feedback_batches(session, batch_size=10))
    assert [len(batch) for batch in batches] == [10, 10, 7]
    examples = [example for batch in batches for example in batch]
    assert examples == [
        FeedbackExample(r, f"prompt {i}", m.position, (r + m.position) % 2 == 0)
        for i, r in enumerate(ids)
        for m in zoo
    ]
