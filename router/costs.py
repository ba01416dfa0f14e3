"""Per-model cost estimates learned from observed costs.

The decision needs E_hat[m] before the request runs. Costs are in whatever unit the zoo
reports (joules, dollars); router.messplus turns them into units of satisfaction so that
the trade-off weight V is unit-free and one default serves every zoo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["CostEstimator"]


@dataclass
class CostEstimator:
    """Running mean of each model's observed cost per request.

    Until a model has been observed its cost comes from `prior` (for a live zoo: the price
    table; without one, the model order, cheapest first, as 1, 2, 4, ...). With
    `keep_last=True` the estimate is overwritten by the latest observation instead, as in the
    MESS+ authors' simulator.
    """

    n_models: int
    prior: npt.NDArray[np.float64] | None = None
    keep_last: bool = False
    totals: npt.NDArray[np.float64] = field(init=False)
    counts: npt.NDArray[np.float64] = field(init=False)
    last: npt.NDArray[np.float64] = field(init=False)
    # The prior as used: the one given, or the model order's 1, 2, 4, ...
    prior_cost: npt.NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        prior = np.power(2.0, np.arange(self.n_models)) if self.prior is None else self.prior
        self.prior_cost = np.asarray(prior, dtype=np.float64)
        if self.prior_cost.shape != (self.n_models,) or np.any(self.prior_cost <= 0):
            raise ValueError("cost prior must be one positive number per model")
        self.totals = np.zeros(self.n_models)
        self.counts = np.zeros(self.n_models)
        self.last = self.prior_cost.copy()

    def observe(self, model: int, cost: float) -> None:
        self.totals[model] += cost
        self.counts[model] += 1
        self.last[model] = cost

    def estimate(self) -> npt.NDArray[np.float64]:
        """Expected cost per request of each model, in the zoo's unit."""
        if self.keep_last:
            return self.last.copy()
        seen = self.counts > 0
        estimate = np.where(seen, self.totals / np.maximum(self.counts, 1), self.prior_cost)
        # An unseen model priced from the prior is scaled to the units of the seen ones.
        if seen.any() and not seen.all():
            scale = np.median(estimate[seen] / self.prior_cost[seen])
            estimate = np.where(seen, estimate, self.prior_cost * scale)
        return estimate
