"""The model zoo: which models exist, in which order (cheapest first), at what cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import InvalidValue, UnknownModel
from db.models import ZooModel

__all__ = ["ModelSpec", "get_model_by_name", "list_models", "upsert_models"]


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
    """Create or update models by name; models not named keep their rows and positions.

    Returns the whole zoo in position order. Reordering (even swapping two models) works:
    rows that move are first parked on free negative positions, because the unique
    constraint on position is checked per statement and an in-place swap would collide.
    """
    names = Counter(spec.name for spec in specs)
    if repeated := sorted(name for name, n in names.items() if n > 1):
        raise InvalidValue(f"model name(s) given more than once: {', '.join(repeated)}")
    if negative := sorted(spec.name for spec in specs if spec.position < 0):
        raise InvalidValue(f"negative position for model(s): {', '.join(negative)}")

    existing = {m.name: m for m in session.scalars(select(ZooModel).with_for_update())}
    final = {name: model.position for name, model in existing.items()}
    final.update({spec.name: spec.position for spec in specs})
    holders: dict[int, list[str]] = {}
    for name, position in sorted(final.items()):
        holders.setdefault(position, []).append(name)
    if clashes := {p: n for p, n in holders.items() if len(n) > 1}:
        detail = "; ".join(f"{p}: {', '.join(n)}" for p, n in sorted(clashes.items()))
        raise InvalidValue(f"models would share a position ({detail})")

    for spec in specs:
        model = existing.get(spec.name)
        if model is not None and model.position != spec.position:
            model.position = -model.id
    session.flush()
    for spec in specs:
        model = existing.get(spec.name)
        if model is None:
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


def list_models(session: Session) -> list[ZooModel]:
    """Every model, cheapest first: the order of the router's probability vectors."""
    return list(session.scalars(select(ZooModel).order_by(ZooModel.position)))


def get_model_by_name(session: Session, name: str) -> ZooModel:
    """The row behind a model worker's queue name."""
    model = session.scalar(select(ZooModel).where(ZooModel.name == name))
    if model is None:
        raise UnknownModel(name)
    return model
