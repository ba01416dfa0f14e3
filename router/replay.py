"""Offline replay: run policies over a labelled data set as if its prompts arrived live.

Requests arrive in a seeded random order; a served answer's satisfaction is the data set's
label; every model a decision queries is charged its measured cost (so exploring costs the
whole zoo). Feedback is immediate; with feedback_share < 1 only that share of requests is
ever rated (a seeded coin per request, as the paper's sparse setting), and the policy learns
from those alone, while the SLA is still judged on every user's satisfaction. With
rating_batch = B, requests arrive in batches of B submitted at once, and a batch's answers
and ratings reach the policy only after the whole batch is routed: a fresh deployment's
first batch is then routed before any rating, as in the live cold start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from router.dataset import ZooData
from router.decision import Decision
from router.features import HashedNgrams, SparseBatch
from router.messplus import MessPlusSettings
from router.policies import Outcome, PolicyContext, Request, make_policy
from router.sla import validate_alpha

__all__ = ["PolicySummary", "ReplayTrace", "replay", "summarise"]


@dataclass(frozen=True)
class ReplayTrace:
    """Per request, in arrival order: what one policy did on one seed."""

    policy: str
    seed: int
    order: npt.NDArray[np.int64]
    served: npt.NDArray[np.int64]
    explored: npt.NDArray[np.bool_]
    satisfied: npt.NDArray[np.float64]
    cost: npt.NDArray[np.float64]
    queue: npt.NDArray[np.float64]

    @property
    def satisfaction(self) -> float:
        return float(self.satisfied.mean())


@dataclass(frozen=True)
class PolicySummary:
    """One policy over all seeds, in the shape of the replay JSON."""

    satisfaction: float
    satisfaction_min: float
    cost: float
    explored: float
    model_share: dict[str, float]
    sla_met: bool

    def as_json(self) -> dict[str, object]:
        return {
            "satisfaction": self.satisfaction,
            "satisfaction_min": self.satisfaction_min,
            "cost": self.cost,
            "explored": self.explored,
            "model_share": self.model_share,
            "sla_met": self.sla_met,
        }


def replay(
    data: ZooData,
    policy_name: str,
    alpha: float,
    seed: int,
    *,
    settings: MessPlusSettings | None = None,
    feedback_share: float = 1.0,
    rating_batch: int = 0,
    features: SparseBatch | None = None,
    on_request: Callable[[], None] | None = None,
) -> ReplayTrace:
    """Replay one policy on one seed. Pass `features` to featurise the data set only once.

    rating_batch = 0 delivers every answer's rating right after it is routed."""
    alpha = validate_alpha(alpha)
    if features is None:
        features = HashedNgrams().featurise(data.prompts)
    context = PolicyContext(
        n_models=data.n_models,
        alpha=alpha,
        messplus=settings or MessPlusSettings(),
        cost_prior=None,
        data=data,
    )
    policy = make_policy(policy_name, context, data.models)
    if not 0.0 < feedback_share <= 1.0:
        raise ValueError(f"feedback share must be in (0, 1], got {feedback_share}")
    if rating_batch < 0:
        raise ValueError(f"rating batch must be >= 0, got {rating_batch}")
    order = np.random.default_rng(seed).permutation(data.n_requests)
    rng = np.random.default_rng([seed, 1])
    rated = np.random.default_rng([seed, 2]).random(data.n_requests) < feedback_share
    n = data.n_requests
    served = np.zeros(n, dtype=np.int64)
    explored = np.zeros(n, dtype=bool)
    satisfied = np.zeros(n)
    cost = np.zeros(n)
    queue = np.zeros(n)
    undelivered: list[tuple[Request, Decision, Outcome]] = []
    for step, index in enumerate(order):
        request = Request(int(index), features.row(int(index)))
        decision = policy.route(request, rng)
        queried = list(decision.queried)
        labels = np.full(data.n_models, np.nan)
        if rated[step]:
            labels[queried] = data.satisfied[index, queried]
        costs = np.full(data.n_models, np.nan)
        costs[queried] = data.cost[index, queried]
        undelivered.append((request, decision, Outcome(labels, costs)))
        if rating_batch == 0 or (step + 1) % rating_batch == 0 or step + 1 == n:
            for delivered in undelivered:
                policy.observe(*delivered)
            undelivered.clear()
        served[step] = decision.served
        explored[step] = decision.explored
        satisfied[step] = data.satisfied[index, decision.served]
        cost[step] = float(np.nansum(costs))
        queue[step] = policy.queue
        if on_request is not None:
            on_request()
    return ReplayTrace(policy_name, seed, order, served, explored, satisfied, cost, queue)


def summarise(
    traces: Sequence[ReplayTrace], models: Sequence[str], alpha: float, tolerance: float = 0.01
) -> PolicySummary:
    """Mean over seeds; the SLA is met when the mean reaches alpha and no seed falls more
    than `tolerance` below it."""
    satisfaction = [t.satisfaction for t in traces]
    share = np.mean(
        [np.bincount(t.served, minlength=len(models)) / len(t.served) for t in traces], 0
    )
    mean_satisfaction = float(np.mean(satisfaction))
    return PolicySummary(
        satisfaction=mean_satisfaction,
        satisfaction_min=float(np.min(satisfaction)),
        cost=float(np.mean([t.cost.sum() for t in traces])),
        explored=float(np.mean([t.explored.sum() for t in traces])),
        model_share={m: float(s) for m, s in zip(models, share, strict=True)},
        sla_met=bool(mean_satisfaction >= alpha and min(satisfaction) >= alpha - tolerance),
    )
