"""The feedback stage: apply pending ratings to the SLA state and the zoo's stats.

Ratings arrive as ids of pending ratings (workers.ratings stored them, each naming an
answer that exists). A rating of the answer a user was served advances the tenant's
virtual queue, Q <- max(0, Q + alpha - s), takes the expected debt the router counted for
that request out of the tenant's pending debt, and moves the answer from unrated to rated
in the SLA calibration, with its residual s - p against the satisfaction p predicted when
it was routed (see workers.routing and router.sla.UnratedLedger). A changed rating applies
the correction (s_old - s_new) as one more queue step, so the queue ends where re-rating
would have left it, up to the floor at zero, and replaces its residual. Every rating,
served or explored, teaches the router's base layer (model_stats). Duplicates and ratings
older than the stored one (delivered late) change nothing. A pending rating is applied and
deleted in one transaction, so a redelivered or republished message finds nothing to do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from db.feedback import FeedbackOutcome, Rating, upsert_feedback
from db.model_stats import add_ratings
from db.models import PendingRating, Response, RoutingDecision, Tenant
from db.pending_ratings import delete_pending, take_pending
from db.sla import apply_sla_update
from db.sla_calibration import add_rated
from workers import metrics

__all__ = ["FeedbackSummary", "apply_ratings"]


@dataclass
class FeedbackSummary:
    """What applying a chunk of pending ratings did; `refused` holds each rating that names
    no answer (as a JSON object) with the reason."""

    new: int = 0
    changed: int = 0
    duplicate: int = 0
    stale: int = 0
    refused: list[tuple[dict[str, Any], str]] = field(default_factory=list)


def _answerable(
    session: Session, pending: Sequence[PendingRating]
) -> tuple[dict[int, list[Rating]], list[tuple[dict[str, Any], str]]]:
    """Ratings grouped by tenant, each in its own order, and those naming no answer.

    Submitting checked the answers, and answers are never deleted; a pending rating
    without its answer was stored around that check, and is refused rather than counted
    on a request that may yet fail."""
    keys = sorted({(row.request_id, row.model_id) for row in pending})
    answers = {
        (request_id, model_id)
        for request_id, model_id in session.execute(
            select(Response.request_id, Response.model_id).where(
                tuple_(Response.request_id, Response.model_id).in_(keys)
            )
        )
    }
    by_tenant: dict[int, list[Rating]] = defaultdict(list)
    refused: list[tuple[dict[str, Any], str]] = []
    for row in pending:
        rating = Rating(row.request_id, row.model_id, row.satisfied, row.rated_at, row.id)
        if (row.request_id, row.model_id) in answers:
            by_tenant[row.tenant_id].append(rating)
            continue
        described = {
            "rating_id": row.id,
            "tenant_id": row.tenant_id,
            "request_id": row.request_id,
            "model_id": row.model_id,
            "satisfied": row.satisfied,
            "rated_at": row.rated_at.isoformat(),
        }
        refused.append(
            (
                described,
                f"request {row.request_id} has no answer of model id "
                f"{row.model_id}: nothing to rate",
            )
        )
    for ratings in by_tenant.values():
        ratings.sort(key=lambda rating: rating.order)
    return by_tenant, refused


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


def apply_ratings(sessions: sessionmaker[Session], rating_ids: Sequence[int]) -> FeedbackSummary:
    """Apply the pending ratings among `rating_ids` (ids already applied are skipped), then
    update SLA states and model stats, all in one transaction."""
    summary = FeedbackSummary()
    with sessions.begin() as session:
        pending = take_pending(session, rating_ids)
        by_tenant, summary.refused = _answerable(session, pending)
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
                elif result.outcome is FeedbackOutcome.STALE:
                    summary.stale += 1
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
        delete_pending(session, [row.id for row in pending])
    metrics.current().ratings_stored(
        {
            "new": summary.new,
            "changed": summary.changed,
            "duplicate": summary.duplicate,
            "stale": summary.stale,
            "rejected": len(summary.refused),
        }
    )
    return summary
