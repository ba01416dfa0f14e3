"""The rows behind `messplus report`: which requests a report covers, each routed request
as the router decided it and as it turned out, and the per-model table.

A report covers the routed requests of one job, or of one tenant submitted since a time
(or ever). Requests still queued have no decision and are left out: there is nothing to
plot for them yet. As in db.sla_report, satisfaction counts only the rating of the answer
the user was served; explored answers teach the router but are not what the tenant got.

Requests are streamed in routing order (the tenant's request counter t) in batches, so a
tenant's whole history can be reported without holding its ORM rows in memory; the table
is computed by SQL aggregates, independently of that stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, func, select
from sqlalchemy.orm import Session

from db.errors import UnknownJob
from db.jobs import require_job
from db.models import Feedback, Job, Request, Response, RoutingDecision, Tenant, ZooModel
from db.tenants import get_tenant, get_tenant_by_name

__all__ = [
    "ModelFigures",
    "ReportScope",
    "RoutedRequest",
    "count_routed",
    "job_scope",
    "model_figures",
    "routed_requests",
    "tenant_scope",
]


@dataclass(frozen=True, slots=True)
class ReportScope:
    """The requests a report covers: one job's, or a tenant's submitted since `since`
    (every one of the tenant's when both job_id and since are None)."""

    tenant_id: int
    tenant: str
    alpha: float
    tenant_settings: dict[str, Any]
    job_id: str | None = None
    since: dt.datetime | None = None

    def describe(self) -> str:
        if self.job_id is not None:
            return f"job {self.job_id}"
        if self.since is not None:
            return f"requests submitted since {self.since.isoformat(timespec='seconds')}"
        return "all requests"


@dataclass(frozen=True, slots=True)
class RoutedRequest:
    """One routed request: what the router knew and chose, and what it cost and earned.

    `predicted_satisfaction` is what the router predicted for the served model when it
    decided. `satisfied` is the rating of the served answer (None: not rated); `cost`
    counts every answer (explored requests are answered by every model), `served_cost`
    only the served one.
    """

    request_id: int
    t: int
    status: str
    served_model_id: int
    explored: bool
    virtual_queue: float
    predicted_satisfaction: float
    predictor_version_id: int | None
    satisfied: bool | None
    cost: float
    served_cost: float


@dataclass(frozen=True, slots=True)
class ModelFigures:
    """One zoo model's row of the report table: requests it served, what its answers cost
    (explored ones included), and the ratings of the answers it served."""

    model_id: int
    name: str
    requests: int
    cost: float
    rated: int
    satisfied: int


def _scope_of(tenant: Tenant, **selection: Any) -> ReportScope:
    return ReportScope(tenant.id, tenant.name, tenant.alpha, dict(tenant.settings), **selection)


def _in_scope(scope: ReportScope) -> ColumnElement[bool]:
    if scope.job_id is not None:
        return Request.job_id == scope.job_id
    if scope.since is not None:
        return and_(Request.tenant_id == scope.tenant_id, Request.created_at >= scope.since)
    return Request.tenant_id == scope.tenant_id


def job_scope(session: Session, job_id: str, tenant_name: str | None = None) -> ReportScope:
    """A job's scope; with a tenant name, the job must be that tenant's.

    Raises UnknownTenant, or UnknownJob (with the same words whether the job does not
    exist or belongs to another tenant, as everywhere in db/).
    """
    if tenant_name is not None:
        tenant = get_tenant_by_name(session, tenant_name)
        require_job(session, job_id, tenant.id)
    else:
        owner = session.scalar(select(Job.tenant_id).where(Job.id == job_id))
        if owner is None:
            raise UnknownJob(job_id)
        tenant = get_tenant(session, owner)
    return _scope_of(tenant, job_id=job_id)


def tenant_scope(
    session: Session, tenant_name: str, since: dt.datetime | None = None
) -> ReportScope:
    """A tenant's requests submitted since `since` (timezone-aware), or all of them."""
    return _scope_of(get_tenant_by_name(session, tenant_name), since=since)


def _routed(scope: ReportScope) -> Select[int]:
    """Requests of the scope that have a routing decision (a join both queries share)."""
    return (
        select(Request.id)
        .join(RoutingDecision, RoutingDecision.request_id == Request.id)
        .where(_in_scope(scope))
    )


def count_routed(session: Session, scope: ReportScope) -> int:
    return int(session.scalar(select(func.count()).select_from(_routed(scope).subquery())) or 0)


def routed_requests(
    session: Session, scope: ReportScope, batch_size: int = 10_000
) -> Iterator[RoutedRequest]:
    """The scope's routed requests in routing order, fetched `batch_size` rows at a time."""
    cost = (
        select(func.coalesce(func.sum(Response.cost), 0.0))
        .where(Response.request_id == Request.id)
        .scalar_subquery()
    )
    served_cost = (
        select(func.coalesce(func.sum(Response.cost), 0.0))
        .where(Response.request_id == Request.id, Response.model_id == Request.served_model_id)
        .scalar_subquery()
    )
    statement = (
        select(
            Request.id,
            RoutingDecision.t,
            Request.status,
            RoutingDecision.chosen_model_id,
            RoutingDecision.explored,
            RoutingDecision.virtual_queue,
            RoutingDecision.predicted_satisfaction,
            RoutingDecision.predictor_version_id,
            Feedback.satisfied,
            cost,
            served_cost,
        )
        .join(RoutingDecision, RoutingDecision.request_id == Request.id)
        .outerjoin(
            Feedback,
            and_(Feedback.request_id == Request.id, Feedback.model_id == Request.served_model_id),
        )
        .where(_in_scope(scope))
        .order_by(RoutingDecision.t, Request.id)
        .execution_options(yield_per=batch_size)
    )
    for row in session.execute(statement):
        yield RoutedRequest(
            request_id=row[0],
            t=row[1],
            status=row[2],
            served_model_id=row[3],
            explored=row[4],
            virtual_queue=row[5],
            predicted_satisfaction=row[6],
            predictor_version_id=row[7],
            satisfied=row[8],
            cost=float(row[9]),
            served_cost=float(row[10]),
        )


def model_figures(session: Session, scope: ReportScope) -> list[ModelFigures]:
    """One row per zoo model in position order, zeros for models the scope did not use."""
    routed = _routed(scope)
    served = dict(
        session.execute(
            select(Request.served_model_id, func.count())
            .where(Request.id.in_(routed))
            .group_by(Request.served_model_id)
        ).all()
    )
    costs = dict(
        session.execute(
            select(Response.model_id, func.sum(Response.cost))
            .where(Response.request_id.in_(routed))
            .group_by(Response.model_id)
        ).all()
    )
    ratings = {
        model_id: (int(rated), int(satisfied))
        for model_id, rated, satisfied in session.execute(
            select(
                Feedback.model_id,
                func.count(),
                func.coalesce(func.sum(func.cast(Feedback.satisfied, Integer)), 0),
            )
            .join(
                Request,
                and_(
                    Request.id == Feedback.request_id,
                    Request.served_model_id == Feedback.model_id,
                ),
            )
            .where(Request.id.in_(routed))
            .group_by(Feedback.model_id)
        )
    }
    return [
        ModelFigures(
            model_id=model_id,
            name=name,
            requests=int(served.get(model_id, 0)),
            cost=float(costs.get(model_id) or 0.0),
            rated=ratings.get(model_id, (0, 0))[0],
            satisfied=ratings.get(model_id, (0, 0))[1],
        )
        for model_id, name in session.execute(
            select(ZooModel.id, ZooModel.name).order_by(ZooModel.position)
        )
    ]
