"""The cheapest fixed random mixture of models whose expected satisfaction meets alpha.

This is RouterBench's "zero router": it never reads the prompt. The optimum of the linear
programme min sum w_m c_m s.t. sum w_m a_m >= alpha, sum w_m = 1, w >= 0 lies on the lower
convex hull of the (accuracy, cost) points and mixes at most two models, so trying every
single model and every pair is exact and cheap for any zoo size a provider runs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["cheapest_mixture", "satisfaction_prices"]


def cheapest_mixture(
    accuracy: npt.NDArray[np.float64], cost: npt.NDArray[np.float64], alpha: float
) -> npt.NDArray[np.float64]:
    """Mixture weights (sum 1) of the cheapest mixture meeting alpha in expectation.

    If no model reaches alpha, all weight goes to the most accurate model (the best the zoo
    can do).
    """
    accuracy = np.asarray(accuracy, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    n = len(accuracy)
    best_cost, best = np.inf, np.eye(n)[int(np.argmax(accuracy))]
    for i in range(n):
        if accuracy[i] >= alpha and cost[i] < best_cost:
            best_cost, best = cost[i], np.eye(n)[i]
        for j in range(n):
            if accuracy[i] < alpha <= accuracy[j]:
                w_i = (accuracy[j] - alpha) / (accuracy[j] - accuracy[i])
                mixed = w_i * cost[i] + (1.0 - w_i) * cost[j]
                if mixed < best_cost:
                    best_cost = mixed
                    best = np.zeros(n)
                    best[i], best[j] = w_i, 1.0 - w_i
    return best


def satisfaction_prices(
    accuracy: npt.NDArray[np.float64], cost: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The cheapest price, in cost per unit of expected satisfaction, the zoo offers, for each
    row of believed accuracies (rows, models) and one cost per model.

    It is the flattest slope (cost gap / accuracy gap) between two models, i.e. the first
    segment of the lower convex hull. Dividing costs by it expresses them in units of
    satisfaction, which makes V unit-free and puts the virtual queue's operating point at
    Q = V whenever the SLA is won on that segment. Where no model is both better and
    dearer than another there is no trade-off and the largest cost is the scale.
    """
    accuracy = np.atleast_2d(np.asarray(accuracy, dtype=np.float64))
    cost = np.asarray(cost, dtype=np.float64)
    gain = accuracy[:, None, :] - accuracy[:, :, None]
    extra = np.broadcast_to(cost[None, :] - cost[:, None], gain.shape)
    useful = (gain > 0) & (extra > 0)
    slopes = np.where(useful, extra / np.where(useful, gain, 1.0), np.inf).min(axis=(1, 2))
    fallback = float(cost.max()) if cost.max() > 0 else 1.0
    return np.where(np.isfinite(slopes), slopes, fallback)
