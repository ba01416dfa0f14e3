"""Figures about a job, computed from the stored rows: what it cost, which models served
it, how satisfied its users were. The demo, tests and reports read them here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, and_, func, select
from sqlalchemy.orm import Session

from db.jobs import require_job
from db.models import Feedback, Request, Response, RoutingDecision, ZooModel

__all__ = ["JobSummary", "job_summary"]


@dataclass(frozen=True)
class JobSummary:
    """A job's outcome: shares are over served requests, satisfaction over rated ones."""

    requests: int
    done: int
    failed: int
    explored: int
    cost: float
    served_by: dict[str, int]
    rated: int
    satisfied: int

    @property
    def satisfaction(self) -> float:
        return self.satisfied / self.rated if self.rated else float("nan")


def job_summary(session: Session, job_id: str, tenant_id: int) -> JobSummary:
    require_job(session, job_id, tenant_id)
    in_job = Request.job_id == job_id
    status = dict(
        session.execute(
            select(Request.status, func.count()).where(in_job).group_by(Request.status)
        ).all()
    )
    cost = session.scalar(
        select(func.coalesce(func.sum(Response.cost), 0.0))
        .join(Request, Request.id == Response.request_id)
        .where(in_job)
    )
    explored = session.scalar(
        select(func.count())
        .select_from(RoutingDecision)
        .join(Request, Request.id == RoutingDecision.request_id)
        .where(in_job, RoutingDecision.explored)
    )
    served_by = dict(
        session.execute(
            select(ZooModel.name, func.count())
            .join(Request, Request.served_model_id == ZooModel.id)
            .where(in_job)
            .group_by(ZooModel.name)
        ).all()
    )
    rated, satisfied = session.execute(
        select(
            func.count(Feedback.id),
            func.coalesce(func.sum(func.cast(Feedback.satisfied, Integer)), 0),
        )
        .join(
            Request,
            and_(Request.id == Feedback.request_id, Request.served_model_id == Feedback.model_id),
        )
        .where(in_job)
    ).one()
    return JobSummary(
        requests=sum(status.values()),
        done=status.get("done", 0),
        failed=status.get("failed", 0),
        explored=int(explored or 0),
        cost=float(cost or 0.0),
        served_by=served_by,
        rated=int(rated),
        satisfied=int(satisfied),
    )
