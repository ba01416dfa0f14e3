"""The reconciler: Postgres is the source of truth, the broker is not.

A message can be lost (Redis restarted without persistence, a worker killed before it
acknowledged, a publish that failed after the commit). The requests it carried then sit in
'queued' or 'routed' without moving. The reconciler finds requests untouched for longer
than a timeout and publishes them again: queued ones to the router, routed ones to every
model that still owes an answer (the served model, and for an explored request every model
up to it: db.routing.asks).
Every stage is idempotent, so a request that was merely slow is not routed, answered or
charged twice; the requests re-published are touched so the next pass waits again.
Ratings are stored before their ids are published, so pending ratings untouched as long
are published to the feedback workers again the same way (applying one deletes it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Request, RequestStatus, Response, RoutingDecision, ZooModel, utcnow
from db.pending_ratings import stale_pending
from db.reconciler import stuck_requests
from db.routing import asks
from workers.publish import publish_feedback, publish_infer, publish_route

__all__ = ["ReconcileReport", "reconcile"]


@dataclass
class ReconcileReport:
    """What one pass re-published."""

    requeued: int = 0
    reinferred: dict[str, int] = field(default_factory=dict)
    ratings: int = 0

    @property
    def total(self) -> int:
        return self.requeued + sum(self.reinferred.values()) + self.ratings


def _owed_answers(session: Session, routed: list[int]) -> dict[str, list[int]]:
    """Model name -> routed request ids still waiting for that model's answer."""
    if not routed:
        return {}
    models = {
        model_id: (name, position)
        for model_id, name, position in session.execute(
            select(ZooModel.id, ZooModel.name, ZooModel.position)
        )
    }
    answered = set(
        session.execute(
            select(Response.request_id, Response.model_id).where(Response.request_id.in_(routed))
        ).all()
    )
    decisions = session.execute(
        select(RoutingDecision.request_id, RoutingDecision.explored, Request.served_model_id)
        .join(Request, Request.id == RoutingDecision.request_id)
        .where(RoutingDecision.request_id.in_(routed))
    ).all()
    owed: dict[str, list[int]] = defaultdict(list)
    for request_id, explored, served_model_id in decisions:
        if served_model_id is None:
            continue
        served_position = models[served_model_id][1]
        for model_id, (name, position) in models.items():
            if asks(explored, served_position, position) and (request_id, model_id) not in answered:
                owed[name].append(request_id)
    return dict(owed)


def reconcile(
    sessions: sessionmaker[Session], older_than_s: float, chunk_size: int, limit: int = 10_000
) -> ReconcileReport:
    """Re-publish requests stuck for more than older_than_s; returns what was sent."""
    with sessions.begin() as session:
        stuck = stuck_requests(session, older_than_s, limit)
        queued = [r.id for r in stuck if r.status == RequestStatus.QUEUED.value]
        routed = [r.id for r in stuck if r.status == RequestStatus.ROUTED.value]
        owed = _owed_answers(session, routed)
        if stuck:
            session.execute(
                update(Request)
                .where(Request.id.in_([r.id for r in stuck]))
                .values(updated_at=utcnow())
            )
        ratings = stale_pending(session, older_than_s, limit)
    report = ReconcileReport()
    if queued:
        publish_route(queued, chunk_size)
        report.requeued = len(queued)
    for model, ids in owed.items():
        publish_infer(model, ids, chunk_size)
        report.reinferred[model] = len(ids)
    if ratings:
        publish_feedback(ratings, chunk_size)
        report.ratings = len(ratings)
    return report
