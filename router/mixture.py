"""The cheapest fixed random mixture of models whose expected satisfaction meets alpha.

This is RouterBench's "zero router": it never reads the prompt. The optimum of the linear
programme min sum w_m c_m s.t. sum w_m a_m >= alpha, sum w_m = 1, w >= 0 lies on the lower
convex hull of the (accuracy, cost) points and mixes at most two models, so trying every
single model and every pair is exact and cheap for any zoo size a provider runs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["cheapest_mixture"]


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
