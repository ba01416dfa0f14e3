"""The SLA estimate's per tenant and model sums (router.sla.UnratedLedger), kept in SQL.

Routers add the answers they serve while holding the tenant's SLA row lock; feedback
workers move rated answers out with increments computed in SQL, after updating the SLA
row, so every writer takes the tenant's locks in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from db._dialect import upsert_insert
from db.models import Feedback, Request, RequestStatus, RoutingDecision, SlaCalibration
from router.sla import UnratedLedger

__all__ = ["add_rated", "add_served", "read_ledger", "recompute_ledger"]


_SUMS = ("unrated", "unrated_predicted", "rated", "residual", "residual_squared")


def _increment(session: Session, tenant_id: int, model_id: int, **deltas: float) -> None:
    """Add `deltas` to one row, creating it at the deltas: one statement, so a router's
    chunk pays one round trip per model it served."""
    insert = upsert_insert(session, SlaCalibration).values(
        tenant_id=tenant_id, model_id=model_id, **{name: deltas.get(name, 0) for name in _SUMS}
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[SlaCalibration.tenant_id, SlaCalibration.model_id],
            set_={name: getattr(SlaCalibration, name) + delta for name, delta in deltas.items()},
        )
    )


def add_served(session: Session, tenant_id: int, served: Mapping[int, tuple[int, float]]) -> None:
    """Per model id: (answers served, sum of their predicted satisfaction); they start
    unrated. Negative amounts withdraw requests that failed before they were answered."""
    for model_id in sorted(served):  # one lock order everywhere
        count, predicted = served[model_id]
        _increment(session, tenant_id, model_id, unrated=count, unrated_predicted=predicted)


def add_rated(
    session: Session,
    tenant_id: int,
    rated: Mapping[int, tuple[int, float, float, float]],
) -> None:
    """Per model id: (newly rated answers, their predicted sum, residual sum, squared
    residual sum). A replaced rating passes 0 answers and the change of its residuals."""
    for model_id in sorted(rated):
        count, predicted, residual, squared = rated[model_id]
        _increment(
            session,
            tenant_id,
            model_id,
            unrated=-count,
            unrated_predicted=-predicted,
            rated=count,
            residual=residual,
            residual_squared=squared,
        )


def read_ledger(session: Session, tenant_id: int) -> UnratedLedger:
    """The tenant's sums, one entry per model with answers for it (models disabled since
    included: their unrated answers still count towards the tenant's SLA)."""
    rows = session.scalars(
        select(SlaCalibration)
        .where(
            SlaCalibration.tenant_id == tenant_id,
            (SlaCalibration.unrated != 0) | (SlaCalibration.rated != 0),
        )
        .order_by(SlaCalibration.model_id)
    ).all()
    return UnratedLedger(*(np.array([float(getattr(row, name)) for row in rows]) for name in _SUMS))


def recompute_ledger(session: Session, tenant_id: int) -> UnratedLedger:
    """The same sums counted from scratch from decisions and ratings (of requests that did
    not fail), in the order of read_ledger, to check the running ones."""
    decision = RoutingDecision
    rated = Feedback.id.is_not(None)
    residual = case((Feedback.satisfied, 1.0), else_=0.0) - decision.predicted_satisfaction
    rows = session.execute(
        select(
            func.sum(case((rated, 0), else_=1)),
            func.sum(case((rated, 0.0), else_=decision.predicted_satisfaction)),
            func.sum(case((rated, 1), else_=0)),
            func.sum(case((rated, residual), else_=0.0)),
            func.sum(case((rated, residual * residual), else_=0.0)),
        )
        .select_from(decision)
        .outerjoin(
            Feedback,
            (Feedback.request_id == decision.request_id)
            & (Feedback.model_id == decision.chosen_model_id),
        )
        .join(Request, Request.id == decision.request_id)
        .where(decision.tenant_id == tenant_id, Request.status != RequestStatus.FAILED.value)
        .group_by(decision.chosen_model_id)
        .order_by(decision.chosen_model_id)
    ).all()
    return UnratedLedger(*(np.array([float(row[k]) for row in rows]) for k in range(5)))
