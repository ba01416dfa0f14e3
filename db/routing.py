"""The router's writes: claim queued requests, record decisions, move them to 'routed'.

A chunk of request ids may be delivered twice, even to two routers at once. Claiming is a
conditional UPDATE ... WHERE status = 'queued', which the database serialises per row: the
second claimer waits for the first to commit and then finds nothing left to claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from db._dialect import upsert_insert
from db.models import Request, RequestStatus, RoutingDecision, ZooModel

__all__ = ["Decision", "asked", "asks", "claim_queued", "record_decisions"]


def asks(explored: bool, served_position: int, position: int) -> bool:
    """Does a decision serving the model at served_position ask the model at position?

    The served model, and on an explored request every model up to it in the zoo's order
    (router.messplus: exploring asks the models up to the one it serves)."""
    return position == served_position or (explored and position < served_position)


def asked(model: ZooModel) -> ColumnElement[bool]:
    """SQL for `asks`: the decision on the query's Request row asked the (loaded) `model`."""
    served = aliased(ZooModel)
    return exists().where(
        RoutingDecision.request_id == Request.id,
        served.id == RoutingDecision.chosen_model_id,
        or_(served.id == model.id, RoutingDecision.explored & (served.position > model.position)),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What the router decided for one request and what it knew when deciding."""

    request_id: int
    tenant_id: int
    t: int
    probabilities: Sequence[float]
    virtual_queue: float
    explored: bool
    chosen_model_id: int
    expected_debt: float = 0.0
    predicted_satisfaction: float = 0.0
    predictor_version_id: int | None = None


def claim_queued(session: Session, request_ids: Sequence[int]) -> list[Request]:
    """The requests among `request_ids` still queued, locked for this transaction, by id.

    Claim and `record_decisions` in one transaction: a concurrent claimer of the same ids
    waits for that transaction and then finds them routed. Requests already routed, done
    or failed are left out, which is what makes a redelivered chunk harmless. Each claim
    counts one routing attempt.
    """
    if not request_ids:
        return []
    claimed = session.scalars(
        update(Request)
        .where(Request.id.in_(request_ids), Request.status == RequestStatus.QUEUED.value)
        .values(attempts=Request.attempts + 1)
        .returning(Request)
        .execution_options(populate_existing=True)
    ).all()
    return sorted(claimed, key=lambda request: request.id)


def record_decisions(session: Session, decisions: Sequence[Decision]) -> list[int]:
    """Store decisions (a decision already stored wins) and mark their requests routed.

    Returns the ids that moved from queued to routed in this call; the request's
    served_model_id is set from the stored decision's chosen model.
    """
    if not decisions:
        return []
    session.execute(
        upsert_insert(session, RoutingDecision).on_conflict_do_nothing(
            index_elements=[RoutingDecision.request_id]
        ),
        [
            # A numpy vector is not JSON; store plain floats.
            asdict(decision) | {"probabilities": [float(p) for p in decision.probabilities]}
            for decision in decisions
        ],
    )
    chosen = (
        select(RoutingDecision.chosen_model_id)
        .where(RoutingDecision.request_id == Request.id)
        .scalar_subquery()
    )
    routed = session.scalars(
        update(Request)
        .where(
            Request.id.in_([decision.request_id for decision in decisions]),
            Request.status == RequestStatus.QUEUED.value,
        )
        .values(status=RequestStatus.ROUTED.value, served_model_id=chosen)
        .returning(Request.id)
    ).all()
    return sorted(routed)
