"""How each tenant stands against its SLA, computed from the stored ratings.

The running counters in sla_states say how many served answers were rated and satisfied,
but not how sure that share is nor whether it is slipping now. This report reads the
ratings themselves: satisfaction since the start and over a recent window (the last N
rated answers, or those rated since a time), each with a 95% Wilson score interval, so an
operator can tell "met" from "met by luck on 30 ratings". Only ratings of the answer the
user was served count, as in db.sla.recompute_sla_from_feedback: explored answers teach
the router but are not what the tenant received.

Most users never rate, so the report also estimates satisfaction over every served answer,
rated or not (`all_served`): the rated ones as rated, the unrated ones by the router's own
estimator (router.sla.UnratedLedger: predictions corrected by each model's measured miss),
with an interval that widens with the share left unrated. This is the figure the SLA is
about; the rated share alone is unbiased only while every user is equally likely to rate.

The rated figures come from one query: a window function numbers its rated answers
newest first and one aggregate counts the whole history and the window together. Window
functions and CASE inside aggregates are portable between Postgres and SQLite (3.25+).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from db.models import Feedback, Request, Tenant
from db.sla_calibration import read_ledger
from router.sla import UnratedLedger

__all__ = [
    "DEFAULT_WINDOW",
    "WILSON_Z",
    "Estimate",
    "ServedEstimate",
    "SlaReport",
    "sla_report",
    "wilson_interval",
]

DEFAULT_WINDOW = 1_000
# The standard normal quantile for a two-sided 95% interval.
WILSON_Z = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Estimate:
    """Satisfaction over some rated answers, with its uncertainty and verdict against alpha.

    With no ratings nothing is known: satisfaction, interval and verdicts are None rather
    than a 0 that would read as a missed SLA.
    """

    rated: int
    satisfied: int
    satisfaction: float | None
    lower: float | None
    upper: float | None
    meets_alpha: bool | None
    lower_meets_alpha: bool | None

    @classmethod
    def of(cls, rated: int, satisfied: int, alpha: float) -> Estimate:
        if rated == 0:
            return cls(0, 0, None, None, None, None, None)
        lower, upper = wilson_interval(satisfied, rated)
        share = satisfied / rated
        return cls(rated, satisfied, share, lower, upper, share >= alpha, lower >= alpha)


@dataclass(frozen=True, slots=True)
class ServedEstimate:
    """Estimated satisfaction over every served answer, rated or not, with a 95% interval;
    None while nothing has been served."""

    served: int
    unrated: int
    satisfaction: float | None
    lower: float | None
    upper: float | None

    @classmethod
    def of(cls, ledger: UnratedLedger, rated_satisfied: int) -> ServedEstimate:
        unrated = int(np.sum(ledger.unrated))
        served = unrated + int(np.sum(ledger.rated))
        if served == 0:
            return cls(0, 0, None, None, None)
        estimate, _ = ledger.expected_satisfied()
        low, high = ledger.satisfied_interval(WILSON_Z)
        return cls(
            served,
            unrated,
            (rated_satisfied + estimate) / served,
            (rated_satisfied + low) / served,
            (rated_satisfied + high) / served,
        )


@dataclass(frozen=True, slots=True)
class SlaReport:
    """One tenant's SLA standing; `window` is the last `window_size` rated answers, or
    those rated since `window_since` (exactly one of the two is set)."""

    tenant_id: int
    tenant: str
    alpha: float
    since_start: Estimate
    window: Estimate
    window_size: int | None
    window_since: dt.datetime | None
    # The tenant's unrated-answer sums, as the routers read them (router.sla.UnratedLedger).
    unrated: UnratedLedger

    @property
    def all_served(self) -> ServedEstimate:
        return ServedEstimate.of(self.unrated, self.since_start.satisfied)

    @property
    def status(self) -> str:
        """The SLA is the share since the start: "met" when even the interval's lower bound
        reaches alpha, "at risk" when only the point estimate does, else "missed"."""
        estimate = self.since_start
        if estimate.rated == 0:
            return "no ratings"
        if estimate.lower_meets_alpha:
            return "met"
        return "at risk" if estimate.meets_alpha else "missed"


def wilson_interval(successes: int, trials: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval of a binomial share.

    Unlike the normal approximation p +- z*sqrt(p(1-p)/n) it stays inside [0, 1] and does not
    collapse to a point when every answer (or none) satisfied, which matters for small
    windows and new tenants.
    """
    if trials <= 0:
        raise ValueError(f"trials must be positive, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, {trials}], got {successes}")
    p = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / trials + z2 / (4 * trials * trials))
    # At p = 0 or 1 the bound is exactly 0 or 1; computed, it lands a rounding error away.
    lower = 0.0 if successes == 0 else centre - half
    upper = 1.0 if successes == trials else centre + half
    return lower, upper


def sla_report(
    session: Session,
    tenant: Tenant,
    *,
    window: int = DEFAULT_WINDOW,
    since: dt.datetime | None = None,
) -> SlaReport:
    """One tenant's report; `since` (timezone-aware) replaces the count window when given."""
    if since is None and window < 1:
        raise ValueError(f"window must be at least 1 rated answer, got {window}")
    satisfied = case((Feedback.satisfied, 1), else_=0)
    # Newest first; the id breaks ties between ratings stored in the same instant.
    newest = (
        func.row_number()
        .over(order_by=(Feedback.received_at.desc(), Feedback.id.desc()))
        .label("newest")
    )
    rated = (
        select(Feedback.received_at, satisfied.label("s"), newest)
        .join(
            Request,
            and_(Request.id == Feedback.request_id, Request.served_model_id == Feedback.model_id),
        )
        .where(Feedback.tenant_id == tenant.id)
        .subquery()
    )
    in_window: ColumnElement[bool] = (
        rated.c.newest <= window if since is None else rated.c.received_at >= since
    )
    total, total_satisfied, recent, recent_satisfied = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(rated.c.s), 0),
            func.coalesce(func.sum(case((in_window, 1), else_=0)), 0),
            func.coalesce(func.sum(case((in_window, rated.c.s), else_=0)), 0),
        ).select_from(rated)
    ).one()
    return SlaReport(
        tenant_id=tenant.id,
        tenant=tenant.name,
        alpha=tenant.alpha,
        since_start=Estimate.of(int(total), int(total_satisfied), tenant.alpha),
        window=Estimate.of(int(recent), int(recent_satisfied), tenant.alpha),
        window_size=window if since is None else None,
        window_since=since,
        unrated=read_ledger(session, tenant.id),
    )
