"""The feedback stage: store ratings and move each tenant's SLA state and the zoo's stats.

A rating of the answer a user was served advances the tenant's virtual queue,
Q <- max(0, Q + alpha - s), takes the expected debt the router counted for that request
out of the tenant's pending debt, and moves the answer from unrated to rated in the SLA
calibration, with its residual s - p against the satisfaction p predicted when it was
routed (see workers.routing and router.sla.UnratedLedger). A changed rating applies the
correction (s_old - s_new) as one more queue step, so the queue ends where re-rating
would have left it, up to the floor at zero, and replaces its residual. Every rating,
served or explored, teaches the router's base layer (model_stats). Duplicates change
nothing. Ratings naming an unknown request or model are returned, not stored, so the rest
of a chunk is never lost because of one bad line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.feedback import FeedbackOutcome, Rating, upsert_feedback
from db.model_stats import add_ratings
from db.models import Request, RequestStatus, RoutingDecision, Tenant, ZooModel
from db.sla import apply_sla_update
from db.sla_calibration import add_rated
from workers import metrics
from workers.messages import RatingMessage

__all__ = ["FeedbackSummary", "store_ratings"]


@dataclass
class FeedbackSummary:
    """What storing a chunk of ratings did."""

    new: int = 0
    changed: int = 0
    duplicate: int = 0
    rejected: list[tuple[RatingMessage, str]] = field(default_factory=list)


def _resolve(
    session: Session, messages: Sequence[RatingMessage], tenant: str | None
) -> tuple[dict[int, list[Rating]], list[tuple[RatingMessage, str]]]:
    """Ratings grouped by tenant, and the messages that cannot be stored with the reason.

    With `tenant`, another tenant's request reads as unknown, in the same words as one that
    does not exist, so ids leak nothing."""
    only_tenant = None
    if tenant is not None:
        only_tenant = session.scalar(select(Tenant.id).where(Tenant.name == tenant))
    ids = sorted({m.request_id for m in messages})
    requests = {
        row.id: (row.tenant_id, row.served_model_id, row.status)
        for row in session.execute(
            select(Request.id, Request.tenant_id, Request.served_model_id, Request.status).where(
                Request.id.in_(ids)
            )
        )
    }
    model_ids = dict(session.execute(select(ZooModel.name, ZooModel.id)).all())
    by_tenant: dict[int, list[Rating]] = defaultdict(list)
    rejected: list[tuple[RatingMessage, str]] = []
    for message in messages:
        if message.request_id not in requests or (
            tenant is not None and requests[message.request_id][0] != only_tenant
        ):
            rejected.append((message, f"unknown request {message.request_id}"))
            continue
        tenant_id, served_model_id, status = requests[message.request_id]
        if status == RequestStatus.FAILED.value:
            # It has no answer to rate, and it has left the SLA estimate (db.inference).
            rejected.append((message, f"request {message.request_id} failed: nothing to rate"))
            continue
        if message.model is None:
            if served_model_id is None:
                rejected.append((message, f"request {message.request_id} is not routed yet"))
                continue
            model_id = served_model_id
        elif message.model in model_ids:
            model_id = model_ids[message.model]
        else:
            rejected.append((message, f"unknown model {message.model!r}"))
            continue
        by_tenant[tenant_id].append(Rating(message.request_id, model_id, message.satisfied))
    return by_tenant, rejected


@dataclass(frozen=True, slots=True)
class _ServedRating:
    """A rating of a served answer: new (previous None) or replacing `previous`."""

    request_id: int
    model_id: int
    satisfied: int
    previous: int | None


def _settle(
    session: Session, ratings: list[_ServedRating]
) -> tuple[float, dict[int, tuple[int, float, float, float]]]:
    """What these ratings of served answers take out of the tenant's SLA estimate, read from
    their routing decisions in one query: the expected debt the router counted for the newly
    rated ones, and per served model (newly rated, their predicted sum, residual sum,
    squared sum), the residuals taken against the prediction stored with each decision."""
    if not ratings:
        return 0.0, {}
    decided = {
        request_id: (expected_debt, predicted)
        for request_id, expected_debt, predicted in session.execute(
            select(
                RoutingDecision.request_id,
                RoutingDecision.expected_debt,
                RoutingDecision.predicted_satisfaction,
            ).where(RoutingDecision.request_id.in_(sorted({r.request_id for r in ratings})))
        )
    }
    taken_back = 0.0
    sums: dict[int, tuple[int, float, float, float]] = defaultdict(lambda: (0, 0.0, 0.0, 0.0))
    for rating in ratings:
        expected_debt, p = decided.get(rating.request_id, (0.0, 0.0))
        count, total, residual, squared = sums[rating.model_id]
        if rating.previous is None:
            taken_back += expected_debt
            count, total = count + 1, total + p
            residual += rating.satisfied - p
            squared += (rating.satisfied - p) ** 2
        else:
            residual += rating.satisfied - rating.previous
            squared += (rating.satisfied - p) ** 2 - (rating.previous - p) ** 2
        sums[rating.model_id] = (count, total, residual, squared)
    return taken_back, dict(sums)


def store_ratings(
    sessions: sessionmaker[Session],
    messages: Sequence[RatingMessage],
    *,
    tenant: str | None = None,
) -> FeedbackSummary:
    """Store ratings, then update SLA states and model stats in the same transaction; with
    `tenant`, only ratings of that tenant's requests."""
    summary = FeedbackSummary()
    with sessions.begin() as session:
        by_tenant, summary.rejected = _resolve(session, messages, tenant)
        stats: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for tenant_id in sorted(by_tenant):
            alpha = session.scalar(select(Tenant.alpha).where(Tenant.id == tenant_id))
            assert alpha is not None
            deltas: list[float] = []
            served_ratings: list[_ServedRating] = []
            rated = satisfied = 0
            for result in upsert_feedback(session, tenant_id, by_tenant[tenant_id]):
                s = int(result.rating.satisfied)
                tally = stats[result.rating.model_id]
                if result.outcome is FeedbackOutcome.NEW:
                    summary.new += 1
                    tally[0] += s
                    tally[1] += 1
                    if result.served:
                        deltas.append(alpha - s)
                        served_ratings.append(
                            _ServedRating(result.rating.request_id, result.rating.model_id, s, None)
                        )
                        rated += 1
                        satisfied += s
                elif result.outcome is FeedbackOutcome.CHANGED:
                    summary.changed += 1
                    previous = int(bool(result.previous))
                    tally[0] += s - previous
                    if result.served:
                        deltas.append(float(previous - s))
                        satisfied += s - previous
                        served_ratings.append(
                            _ServedRating(
                                result.rating.request_id, result.rating.model_id, s, previous
                            )
                        )
                else:
                    summary.duplicate += 1
            if deltas or rated:
                taken_back, calibration = _settle(session, served_ratings)
                apply_sla_update(
                    session,
                    tenant_id,
                    queue_deltas=deltas,
                    rated=rated,
                    satisfied=satisfied,
                    pending_debt=-taken_back,
                )
                add_rated(session, tenant_id, calibration)
        add_ratings(session, {m: (t[0], t[1]) for m, t in stats.items()})
    metrics.current().ratings_stored(
        {
            "new": summary.new,
            "changed": summary.changed,
            "duplicate": summary.duplicate,
            "rejected": len(summary.rejected),
        }
    )
    return summary
