"""Ratings on their way in: checked against the answers that exist, then kept until applied.

A rating names an answer: a request of the rating tenant and a model, by default the model
that served it. Only an answer that exists can be rated (the served one, or one explored):
rating one that never existed would move the SLA of a request that failed, or teach every
tenant's router about a model that never saw the prompt. A rating of a request not answered
yet is refused with that reason rather than kept: the user rates again once it is done.

Accepted ratings wait in `pending_ratings` (db.models.PendingRating) until a feedback worker
applies them; their ids are their submission order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from db.errors import InvalidValue
from db.models import (
    PendingRating,
    Request,
    RequestStatus,
    Response,
    RoutingDecision,
    ZooModel,
    utcnow,
)
from db.routing import asks

__all__ = [
    "SubmittedRating",
    "check_ratings",
    "delete_pending",
    "stale_pending",
    "store_ratings",
    "take_pending",
]

# Ids per lookup query: far below the bound-parameter limits of SQLite and Postgres.
LOOKUP_CHUNK = 1000
# As db.reconciler: no rating waits a century.
_LONGEST_S = 100 * 365.25 * 86400


@dataclass(frozen=True, slots=True)
class SubmittedRating:
    """A user's verdict on an answer as submitted: `model` None means the answer served."""

    request_id: int
    satisfied: bool
    model: str | None
    rated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class _Asked:
    status: str
    served_model_id: int | None
    explored: bool


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), LOOKUP_CHUNK):
        yield ids[start : start + LOOKUP_CHUNK]


def _requests(session: Session, tenant_id: int, ids: Sequence[int]) -> dict[int, _Asked]:
    """The tenant's requests among `ids` (another tenant's look missing), with whether
    the router explored them (every model answers)."""
    found: dict[int, _Asked] = {}
    for part in _chunks(ids):
        rows = session.execute(
            select(Request.id, Request.status, Request.served_model_id, RoutingDecision.explored)
            .outerjoin(RoutingDecision, RoutingDecision.request_id == Request.id)
            .where(Request.id.in_(part), Request.tenant_id == tenant_id)
        )
        for request_id, status, served, explored in rows:
            found[request_id] = _Asked(status, served, bool(explored))
    return found


def _answers(session: Session, ids: Sequence[int]) -> set[tuple[int, int]]:
    answers: set[tuple[int, int]] = set()
    for part in _chunks(ids):
        answers.update(
            (request_id, model_id)
            for request_id, model_id in session.execute(
                select(Response.request_id, Response.model_id).where(Response.request_id.in_(part))
            )
        )
    return answers


def _why_unanswered(request_id: int, asked: _Asked, model_asked: bool, model: str | None) -> str:
    """Why (request, model) has no answer to rate; said so the user knows whether to wait."""
    if asked.status == RequestStatus.FAILED.value:
        return f"request {request_id} failed: it has no answer to rate"
    if asked.status == RequestStatus.QUEUED.value or model is None:
        return f"request {request_id} is not answered yet ({asked.status}): rate it once it is done"
    if model_asked:
        return f"request {request_id} has no answer from {model!r} yet: rate it once it has"
    return f"{model!r} did not answer request {request_id}: only an answer that exists is rated"


def check_ratings(
    session: Session, tenant_id: int, ratings: Sequence[SubmittedRating]
) -> tuple[list[int | None], list[tuple[int, str]]]:
    """The model id each rating names, and (position, reason) for every rating that names
    no answer of this tenant's: an unknown request (another tenant's reads the same), an
    unknown model, or an answer that does not exist (yet)."""
    ids = sorted({rating.request_id for rating in ratings})
    asked = _requests(session, tenant_id, ids)
    answers = _answers(session, sorted(asked))
    zoo = session.execute(select(ZooModel.name, ZooModel.id, ZooModel.position)).all()
    model_ids = {name: model_id for name, model_id, _ in zoo}
    positions = {model_id: position for _, model_id, position in zoo}
    resolved: list[int | None] = []
    bad: list[tuple[int, str]] = []
    for position, rating in enumerate(ratings):
        model_id = None
        request = asked.get(rating.request_id)
        if request is None:
            bad.append((position, f"unknown request id {rating.request_id}"))
        elif rating.model is not None and rating.model not in model_ids:
            bad.append((position, f"unknown model {rating.model!r}"))
        else:
            named = request.served_model_id if rating.model is None else model_ids[rating.model]
            if named is not None and (rating.request_id, named) in answers:
                model_id = named
            else:
                model_asked = (
                    named is not None
                    and request.served_model_id is not None
                    and asks(request.explored, positions[request.served_model_id], positions[named])
                )
                reason = _why_unanswered(rating.request_id, request, model_asked, rating.model)
                bad.append((position, reason))
        resolved.append(model_id)
    return resolved, bad


def store_ratings(
    session: Session,
    tenant_id: int,
    ratings: Sequence[SubmittedRating],
    model_ids: Sequence[int | None],
) -> list[int]:
    """Keep checked ratings (with the model ids check_ratings resolved) as pending; returns
    their ids, in the order given, which is their submission order."""
    if not ratings:
        return []
    if None in model_ids or len(model_ids) != len(ratings):
        raise InvalidValue("store only ratings that check_ratings resolved, all of them")
    rows = [
        {
            "tenant_id": tenant_id,
            "request_id": rating.request_id,
            "model_id": model_id,
            "satisfied": rating.satisfied,
            "rated_at": rating.rated_at,
        }
        for rating, model_id in zip(ratings, model_ids, strict=True)
    ]
    return list(
        session.scalars(
            insert(PendingRating).returning(PendingRating.id, sort_by_parameter_order=True), rows
        )
    )


def take_pending(session: Session, ids: Sequence[int]) -> list[PendingRating]:
    """The pending ratings among `ids`, locked until commit (a second worker handed the same
    ids waits, then finds them gone), in id order. Ids of applied ratings are skipped."""
    if not ids:
        return []
    return list(
        session.scalars(
            select(PendingRating)
            .where(PendingRating.id.in_(sorted(set(ids))))
            .order_by(PendingRating.id)
            .with_for_update()
        )
    )


def delete_pending(session: Session, ids: Sequence[int]) -> None:
    """Drop ratings that were applied (or refused for good)."""
    for part in _chunks(sorted(ids)):
        session.execute(delete(PendingRating).where(PendingRating.id.in_(part)))


def stale_pending(session: Session, older_than_s: float, limit: int = 10_000) -> list[int]:
    """Ids of pending ratings untouched for `older_than_s` (their message was lost, or is
    waiting behind a dead worker), oldest first; they are touched, so the next pass waits
    again. Ratings a worker is applying right now are skipped, not waited for."""
    if not older_than_s >= 0 or limit < 1:  # `not >=` refuses NaN too
        raise InvalidValue(f"need older_than_s >= 0 and limit >= 1, got {older_than_s}, {limit}")
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=min(older_than_s, _LONGEST_S))
    ids = list(
        session.scalars(
            select(PendingRating.id)
            .where(PendingRating.updated_at < cutoff)
            .order_by(PendingRating.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for part in _chunks(ids):
        session.execute(
            update(PendingRating).where(PendingRating.id.in_(part)).values(updated_at=now)
        )
    return ids
