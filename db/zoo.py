"""The model zoo: which models exist, in which order (cheapest first), at what cost, and
which of them routers may choose.

A model leaves the zoo in one of two ways. Disabled, it keeps its rows (its answers,
ratings and costs are history that reports and retraining read): routers stop choosing it,
served or explored, from their next chunk, while the requests already routed to it keep
their decision and wait for its worker's answer (`waiting_requests`). Removed, its row
is deleted, which only a model no request was ever routed to allows: a registration by
mistake. A disabled model holds no position anyone needs: registering a model at its
position moves it behind the zoo.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from db.errors import InvalidValue, ModelInUse, PositionTaken, UnknownModel
from db.models import (
    Feedback,
    ModelStats,
    Request,
    RequestStatus,
    Response,
    RoutingDecision,
    SlaCalibration,
    ZooModel,
)

__all__ = [
    "ModelSpec",
    "get_model_by_name",
    "list_models",
    "remove_model",
    "set_enabled",
    "upsert_models",
    "waiting_requests",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """How a zoo model is configured; `position` 0 is the cheapest model."""

    name: str
    triton_model_name: str
    position: int
    cost_per_request: float
    cost_per_token: float
    cost_unit: str
    enabled: bool = True


def upsert_models(session: Session, specs: Sequence[ModelSpec]) -> list[ZooModel]:
    """Create or update models by name; models not named keep their rows and positions,
    except disabled ones in the way of a spec, which move behind the zoo.

    Returns the whole zoo in position order. Reordering (even swapping two models) works:
    rows that move are first parked on free negative positions, because the unique
    constraint on position is checked per statement and an in-place swap would collide.
    Raises PositionTaken when an enabled model not named holds a position asked for.
    """
    names = Counter(spec.name for spec in specs)
    if repeated := sorted(name for name, n in names.items() if n > 1):
        raise InvalidValue(f"model name(s) given more than once: {', '.join(repeated)}")
    if negative := sorted(spec.name for spec in specs if spec.position < 0):
        raise InvalidValue(f"negative position for model(s): {', '.join(negative)}")

    existing = {m.name: m for m in session.scalars(select(ZooModel).with_for_update())}
    final = {name: model.position for name, model in existing.items()}
    final.update({spec.name: spec.position for spec in specs})
    wanted = {spec.position for spec in specs}
    behind = max(final.values(), default=-1)
    for model in sorted(existing.values(), key=lambda m: m.position):
        if model.name not in names and not model.enabled and model.position in wanted:
            behind += 1
            final[model.name] = behind
    holders: dict[int, list[str]] = {}
    for name, position in sorted(final.items()):
        holders.setdefault(position, []).append(name)
    if clashes := {p: n for p, n in holders.items() if len(n) > 1}:
        in_the_way = sorted(n for names_ in clashes.values() for n in names_ if n not in names)
        raise PositionTaken(clashes, in_the_way)

    for name, row in existing.items():
        if row.position != final[name]:
            row.position = -row.id
    session.flush()
    for name, row in existing.items():
        row.position = final[name]
    for spec in specs:
        if spec.name in existing:
            model = existing[spec.name]
        else:
            model = ZooModel(name=spec.name)
            session.add(model)
        model.triton_model_name = spec.triton_model_name
        model.position = spec.position
        model.cost_per_request = spec.cost_per_request
        model.cost_per_token = spec.cost_per_token
        model.cost_unit = spec.cost_unit
        model.enabled = spec.enabled
    session.flush()
    return list_models(session)


def set_enabled(session: Session, name: str, enabled: bool) -> ZooModel:
    """Let routers choose the model again, or stop them from their next chunk on."""
    model = get_model_by_name(session, name)
    model.enabled = enabled
    session.flush()
    return model


def waiting_requests(session: Session, model_id: int) -> list[int]:
    """Routed requests whose user waits for this model's answer (it serves them and has
    not answered yet), by id: what its worker still owes after the model is disabled."""
    answered = exists().where(Response.request_id == Request.id, Response.model_id == model_id)
    return list(
        session.scalars(
            select(Request.id)
            .where(
                Request.status == RequestStatus.ROUTED.value,
                Request.served_model_id == model_id,
                ~answered,
            )
            .order_by(Request.id)
        )
    )


def remove_model(session: Session, name: str) -> None:
    """Delete a model no request was ever routed to (nor answered by, nor rated for).

    Raises ModelInUse for one with history: deleting it would orphan its decisions,
    answers and ratings; disable it instead.
    """
    model = session.scalar(select(ZooModel).where(ZooModel.name == name).with_for_update())
    if model is None:
        raise UnknownModel(name)
    routed = (
        session.scalar(select(func.count()).where(RoutingDecision.chosen_model_id == model.id)) or 0
    )
    answers = session.scalar(select(func.count()).where(Response.model_id == model.id)) or 0
    rated = session.scalar(select(func.count()).where(Feedback.model_id == model.id)) or 0
    if routed or answers or rated:
        raise ModelInUse(name, routed, answers)
    session.execute(delete(ModelStats).where(ModelStats.model_id == model.id))
    session.execute(delete(SlaCalibration).where(SlaCalibration.model_id == model.id))
    session.delete(model)
    session.flush()


def list_models(session: Session) -> list[ZooModel]:
    """Every model, cheapest first: the order of the router's probability vectors."""
    return list(session.scalars(select(ZooModel).order_by(ZooModel.position)))


def get_model_by_name(session: Session, name: str) -> ZooModel:
    """The row behind a model worker's queue name."""
    model = session.scalar(select(ZooModel).where(ZooModel.name == name))
    if model is None:
        raise UnknownModel(name)
    return model
