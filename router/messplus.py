"""MESS+ as pure functions of (settings, state, predictor, draws): one implementation for
the live router and the replay simulator.

A chunk of requests is decided at once: featurise, predict and decide are vectorised, the
request counter t advances per request, and every request consumes one fixed-width row of
standard-normal draws. So deciding a chunk gives exactly the decisions of deciding its
requests one by one from the same generator. The virtual queue changes only when
satisfaction becomes known, which happens after routing.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from router.decision import Decision
from router.features import SparseBatch
from router.mixture import satisfaction_prices
from router.predictor import SatisfactionPredictor
from router.sla import exploration_probability, validate_alpha

__all__ = ["MessPlusSettings", "decide_chunk", "draws_for"]

_NORMAL = NormalDist()


@dataclass(frozen=True)
class MessPlusSettings:
    """The router's knobs. Defaults serve any zoo and any cost unit.

    v: how many units of SLA debt the router lets the virtual queue carry before it pays
      for capability. Costs are divided by the zoo's price of satisfaction
      (router.mixture.satisfaction_price), so V is unit-free and the queue operates at Q = V.
    c: exploration schedule p_t = min(1, c / t^(1/4)); every rating also teaches the
      predictor, so full fan-out exploration is needed less than in the paper (c = 0.1).
    headroom: the queue starts at V + headroom (a placeholder backlog), so the router does
      not first run up V units of SLA debt, and aims to stay `headroom` answers ahead.
    thompson: decide on posterior draws of each model's accuracy rather than on means, so a
      model written off after a few unlucky ratings still gets served and re-learned.
    normalise_cost / learn_from_served / cost_keep_last: off only for the authors' variant.
    """

    v: float = 20.0
    c: float = 0.03
    headroom: float = 3.0
    thompson: bool = True
    normalise_cost: bool = True
    learn_from_served: bool = True
    cost_keep_last: bool = False

    def __post_init__(self) -> None:
        if not self.v > 0:
            raise ValueError(f"V must be > 0, got {self.v}")
        if not 0 <= self.c <= 1:
            raise ValueError(f"c must be in [0, 1], got {self.c}")
        if self.headroom < 0:
            raise ValueError(f"headroom must be >= 0, got {self.headroom}")

    def initial_queue(self) -> float:
        return self.v + self.headroom if self.normalise_cost else 0.0


def draws_for(rng: np.random.Generator, n_requests: int, n_models: int) -> npt.NDArray[np.float64]:
    """The randomness of n requests: per request one column for the exploration coin and one
    per model for the Thompson draw, all standard normal, taken in request order."""
    return rng.standard_normal((n_requests, n_models + 1))


def decide_chunk(
    settings: MessPlusSettings,
    alpha: float,
    first_t: int,
    queue: float,
    predictor: SatisfactionPredictor,
    cost_estimate: npt.NDArray[np.float64],
    x: SparseBatch,
    draws: npt.NDArray[np.float64],
) -> list[Decision]:
    """Decide requests first_t, first_t+1, ... (one per row of x) at the current queue."""
    alpha = validate_alpha(alpha)
    n, m = x.n_rows, predictor.n_models
    t = first_t + np.arange(n)
    explore_p = exploration_probability(t, settings.c)
    # Explore iff the coin's normal draw falls below the p-quantile (probability p exactly).
    thresholds = np.array(
        [
            np.inf if p >= 1 else -np.inf if p <= 0 else _NORMAL.inv_cdf(p)
            for p in np.atleast_1d(explore_p)
        ]
    )
    explored = draws[:, 0] < thresholds
    a, b = predictor.posterior()
    mean = a / (a + b)
    if settings.thompson:
        sd = np.sqrt(mean * (1.0 - mean) / (a + b + 1.0))
        base = np.clip(mean + sd * draws[:, 1:], 1e-4, 1.0 - 1e-4)
    else:
        base = np.broadcast_to(mean, (n, m))
    probabilities = predictor.predict_features(x, base=base)
    if settings.normalise_cost:
        cost = cost_estimate[None, :] / satisfaction_prices(base, cost_estimate)[:, None]
    else:
        cost = np.broadcast_to(cost_estimate, (n, m))
    scores = settings.v * cost + queue * (alpha - probabilities)
    served = np.argmin(scores, axis=1)
    everyone = tuple(range(m))
    return [
        Decision(m - 1, everyone, True, probabilities[i], queue)
        if explored[i]
        else Decision(int(served[i]), (int(served[i]),), False, probabilities[i], queue)
        for i in range(n)
    ]
