"""Each tenant's SLA state, shared by all router and feedback workers.

Two ways to change it without lost updates:

- `apply_sla_update` is one UPDATE computed in SQL from the row's current values, so
  concurrent workers need no lock: the database applies them one after another.
- `lock_sla_state` locks the row for a read-decide-write unit of work (the router reads
  Q and t, decides a chunk, then updates). Postgres uses SELECT ... FOR UPDATE; on SQLite
  every transaction db/ opens is BEGIN IMMEDIATE (see db.engine), which serialises writers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, func, literal, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from db.errors import UnknownTenant
from db.models import Feedback, Request, SlaState

__all__ = ["SlaTally", "apply_sla_update", "lock_sla_state", "recompute_sla_from_feedback"]


@dataclass(frozen=True, slots=True)
class SlaTally:
    """Ratings of served answers, as counted from the feedback table."""

    rated_count: int
    satisfied_count: int


def lock_sla_state(session: Session, tenant_id: int) -> SlaState:
    """The tenant's SLA row, locked until the session's transaction ends.

    Every router of the tenant (on SQLite: every writer) waits for it, so keep the
    transaction short. Claim the requests first, then lock: `upsert_feedback` locks
    requests before the feedback worker updates this row, and one order everywhere
    rules out deadlocks (and an empty claim needs no lock at all).
    """
    state = session.scalar(
        select(SlaState)
        .where(SlaState.tenant_id == tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if state is None:
        raise UnknownTenant(tenant_id)
    return state


def apply_sla_update(
    session: Session,
    tenant_id: int,
    *,
    requests: int = 0,
    queue_deltas: Sequence[float] = (),
    tracked_deltas: Sequence[float] = (),
    rated: int = 0,
    satisfied: int = 0,
    pending_debt: float = 0.0,
) -> SlaState:
    """Atomically advance a tenant's SLA state; returns the row as written.

    Each delta is one step Q <- max(0, Q + delta) of a virtual queue (delta = alpha - s),
    applied in order; counters are incremented by the given amounts (negative for a
    rating that changed from satisfied to not), and so is the pending debt.
    """
    values: dict[str, ColumnElement[float] | ColumnElement[int]] = {
        "request_counter": SlaState.request_counter + requests,
        "rated_count": SlaState.rated_count + rated,
        "satisfied_count": SlaState.satisfied_count + satisfied,
        "pending_debt": SlaState.pending_debt + pending_debt,
    }
    if queue_deltas:
        values["virtual_queue"] = _queue_after(SlaState.virtual_queue, queue_deltas)
    if tracked_deltas:
        values["tracked_queue"] = _queue_after(SlaState.tracked_queue, tracked_deltas)
    state = session.scalar(
        update(SlaState)
        .where(SlaState.tenant_id == tenant_id)
        .values(values)
        .returning(SlaState)
        .execution_options(populate_existing=True)
    )
    if state is None:
        raise UnknownTenant(tenant_id)
    return state


def recompute_sla_from_feedback(session: Session, tenant_id: int) -> SlaTally:
    """Count the ratings of served answers from scratch, to check the running counters."""
    rated, satisfied = session.execute(
        select(
            func.count(Feedback.id),
            func.coalesce(func.sum(case((Feedback.satisfied, 1), else_=0)), 0),
        )
        .join(Request, Request.id == Feedback.request_id)
        .where(Feedback.tenant_id == tenant_id, Feedback.model_id == Request.served_model_id)
    ).one()
    return SlaTally(int(rated), int(satisfied))


def _queue_after(
    column: InstrumentedAttribute[float], deltas: Sequence[float]
) -> ColumnElement[float]:
    """max(0, Q + d) applied for every d in turn, as one SQL expression of the current Q.

    With prefix sums S_k (S_0 = 0) the recursion unrolls to
    Q_n = S_n + max(Q_0, -min_k S_k), so any number of steps is a single atomic UPDATE.
    Both terms are >= 0 after the addition even in floating point, since min_k S_k <= S_n.
    """
    total = 0.0
    lowest = 0.0
    for delta in deltas:
        total += delta
        lowest = min(lowest, total)
    floor = -lowest
    return literal(total) + case((column > floor, column), else_=literal(floor))
