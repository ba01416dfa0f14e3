"""User ratings: store them idempotently and in order, and stream them to the trainer.

A rating is keyed by (request, model) and ordered by when the user gave it (rated_at, then
the id its submission got). Delivering the same rating again is a duplicate; a newer
rating with a different verdict replaces the stored one and is reported as changed, with
the previous value, so the feedback worker can correct the SLA counters it keeps; an older
one, delivered late (a redelivered message, a worker that died), is stale and changes
nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db._paging import stream
from db.errors import UnknownModel, UnknownRequest
from db.models import Feedback, Request, ZooModel

__all__ = [
    "FeedbackExample",
    "FeedbackOutcome",
    "FeedbackResult",
    "Rating",
    "iter_feedback_batches",
    "upsert_feedback",
]


class FeedbackOutcome(enum.StrEnum):
    """What storing a rating did to the table."""

    NEW = "new"
    CHANGED = "changed"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Rating:
    """A user's verdict on one model's answer to one request, in the order it was given:
    rated_at, then seq (the submission's id for it)."""

    request_id: int
    model_id: int
    satisfied: bool
    rated_at: dt.datetime
    seq: int = 0

    @property
    def order(self) -> tuple[dt.datetime, int]:
        return self.rated_at, self.seq


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    """What storing one rating did.

    `previous` is the rating replaced (None when new); `served` tells whether the rated
    answer is the one the user was served, the only kind that counts toward the SLA.
    """

    rating: Rating
    outcome: FeedbackOutcome
    previous: bool | None
    served: bool


@dataclass(frozen=True, slots=True)
class FeedbackExample:
    """One training label: did the model at `model_position` satisfy this prompt?"""

    request_id: int
    prompt: str
    model_position: int
    satisfied: bool


def upsert_feedback(
    session: Session, tenant_id: int, ratings: Sequence[Rating]
) -> list[FeedbackResult]:
    """Store a tenant's ratings; one result per rating, in the order given (which need not
    be the ratings' own order: the newest of each answer's ratings wins either way).

    Raises UnknownRequest naming every request id that does not exist or belongs to
    another tenant, and UnknownModel for a model id not in the zoo; nothing is stored then.
    The rated requests stay locked until commit so that two workers handling ratings of
    the same request cannot both count one as new.
    """
    if not ratings:
        return []
    request_ids = sorted({rating.request_id for rating in ratings})
    served_model = dict(
        session.execute(
            select(Request.id, Request.served_model_id)
            .where(Request.id.in_(request_ids), Request.tenant_id == tenant_id)
            .order_by(Request.id)
            .with_for_update()
        ).all()
    )
    if missing := set(request_ids) - served_model.keys():
        raise UnknownRequest(missing)
    model_ids = {rating.model_id for rating in ratings}
    known_models = set(session.scalars(select(ZooModel.id).where(ZooModel.id.in_(model_ids))))
    if unknown_models := model_ids - known_models:
        raise UnknownModel(min(unknown_models))

    stored = {
        (row.request_id, row.model_id): row
        for row in session.scalars(select(Feedback).where(Feedback.request_id.in_(request_ids)))
    }
    results = []
    for rating in ratings:
        key = (rating.request_id, rating.model_id)
        row = stored.get(key)
        previous = None if row is None else row.satisfied
        if row is None:
            stored[key] = Feedback(
                request_id=rating.request_id,
                model_id=rating.model_id,
                tenant_id=tenant_id,
                satisfied=rating.satisfied,
                rated_at=rating.rated_at,
                rating_seq=rating.seq,
            )
            session.add(stored[key])
            outcome = FeedbackOutcome.NEW
        elif rating.order <= (row.rated_at, row.rating_seq):
            outcome = (
                FeedbackOutcome.DUPLICATE
                if row.satisfied == rating.satisfied
                else FeedbackOutcome.STALE
            )
        else:
            # Newer: a same verdict moves the order on, so an older change cannot land.
            row.rated_at, row.rating_seq = rating.rated_at, rating.seq
            outcome = FeedbackOutcome.DUPLICATE
            if row.satisfied != rating.satisfied:
                row.satisfied = rating.satisfied
                outcome = FeedbackOutcome.CHANGED
        served = served_model[rating.request_id] == rating.model_id
        results.append(FeedbackResult(rating, outcome, previous, served))
    session.flush()
    return results


def iter_feedback_batches(
    session: Session, batch_size: int = 10_000
) -> Iterator[list[FeedbackExample]]:
    """Every rating as a training example, streamed in batches of at most `batch_size`.

    Rows come ordered by request, so the ratings of one request are adjacent (a batch
    boundary may still fall between them); see db._paging.stream for memory and the
    transaction.
    """
    query = (
        select(Feedback.request_id, Request.prompt, ZooModel.position, Feedback.satisfied)
        .join(Request, Request.id == Feedback.request_id)
        .join(ZooModel, ZooModel.id == Feedback.model_id)
        .order_by(Feedback.request_id, Feedback.model_id)
    )
    for partition in stream(session, query, batch_size):
        yield [FeedbackExample(*row) for row in partition]
