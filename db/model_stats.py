"""Per-model running statistics: the router's fast-learning layer, updated in SQL.

Increments are one UPDATE ... SET x = x + d each, so any number of feedback and model
workers can add to them at once without losing an update, and a router reads the whole
zoo's statistics in one small query per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db._dialect import upsert_insert
from db.models import ModelStats

__all__ = ["ModelTally", "add_costs", "add_ratings", "read_model_stats"]


@dataclass(frozen=True, slots=True)
class ModelTally:
    """One model's ratings and charged cost so far."""

    successes: int
    trials: int
    cost_total: float
    cost_count: int


def _ensure_rows(session: Session, model_ids: list[int]) -> None:
    session.execute(
        upsert_insert(session, ModelStats).on_conflict_do_nothing(
            index_elements=[ModelStats.model_id]
        ),
        [
            {"model_id": m, "successes": 0, "trials": 0, "cost_total": 0.0, "cost_count": 0}
            for m in model_ids
        ],
    )


def add_ratings(session: Session, ratings: Mapping[int, tuple[int, int]]) -> None:
    """Add (successes, trials) per model id; negative amounts undo a replaced rating."""
    if not ratings:
        return
    _ensure_rows(session, sorted(ratings))
    for model_id in sorted(ratings):  # one lock order everywhere: no deadlocks
        successes, trials = ratings[model_id]
        session.execute(
            update(ModelStats)
            .where(ModelStats.model_id == model_id)
            .values(successes=ModelStats.successes + successes, trials=ModelStats.trials + trials)
        )


def add_costs(session: Session, costs: Mapping[int, tuple[float, int]]) -> None:
    """Add (total cost, number of answers) per model id, for answers charged once."""
    if not costs:
        return
    _ensure_rows(session, sorted(costs))
    for model_id in sorted(costs):
        total, count = costs[model_id]
        session.execute(
            update(ModelStats)
            .where(ModelStats.model_id == model_id)
            .values(
                cost_total=ModelStats.cost_total + total,
                cost_count=ModelStats.cost_count + count,
            )
        )


def read_model_stats(session: Session) -> dict[int, ModelTally]:
    """Every model's tally by model id (models never rated or charged are absent)."""
    rows = session.scalars(select(ModelStats)).all()
    return {
        row.model_id: ModelTally(row.successes, row.trials, row.cost_total, row.cost_count)
        for row in rows
    }
