"""The cheapest fixed random mixture of models whose expected satisfaction meets alpha.

This is RouterBench's "zero router": it never reads the prompt. The optimum of the linear
programme min sum w_m c_m s.t. sum w_m a_m >= alpha, sum w_m = 1, w >= 0 lies on the lower
convex hull of the (accuracy, cost) points and mixes at most two models, so trying every
single model and every pair is exact and cheap for any zoo size a provider runs.

The stratified version knows which group (kind of request) each prompt belongs to and mixes
per group: the reference a router that recognises kinds of request is held against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["cheapest_mixture", "cheapest_stratified_mixture"]


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


def _hull_upgrades(
    satisfied: npt.NDArray[np.float64], cost: npt.NDArray[np.float64]
) -> tuple[int, list[tuple[int, float, float]]]:
    """A group's cheapest model and its lower-convex-hull upgrades (model, extra satisfied,
    extra cost), in hull order, so their costs per extra satisfied answer increase."""
    here = min(range(len(cost)), key=lambda m: (cost[m], -satisfied[m]))
    start = here
    upgrades: list[tuple[int, float, float]] = []
    while True:
        better = [m for m in range(len(cost)) if satisfied[m] > satisfied[here]]
        if not better:
            return start, upgrades
        step = min(
            better,
            key=lambda m: (
                (cost[m] - cost[here]) / (satisfied[m] - satisfied[here]),
                -satisfied[m],
            ),
        )
        gain, extra = float(satisfied[step] - satisfied[here]), float(cost[step] - cost[here])
        upgrades.append((step, gain, extra))
        here = step


def cheapest_stratified_mixture(
    groups: Sequence[str],
    satisfied: npt.ArrayLike,
    cost: npt.ArrayLike,
    alpha: float,
) -> dict[str, npt.NDArray[np.float64]]:
    """Per group, the mixture weights of the cheapest per-group fixed mixtures whose overall
    expected satisfaction meets alpha, from per-prompt outcomes (N, M) and costs (N, M).

    One coupling constraint makes this LP exact by greedy: every group starts on its cheapest
    model, then the groups' convex-hull upgrades are bought in order of cost per extra
    satisfied answer until alpha * N answers are satisfied (the last one fractionally). If the
    zoo cannot reach alpha, every upgrade is bought.
    """
    labels = np.asarray(groups)
    satisfied = np.asarray(satisfied, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    names = sorted(set(groups))
    weights: dict[str, npt.NDArray[np.float64]] = {}
    total_satisfied = 0.0
    steps: list[tuple[float, str, int, int, float]] = []
    for name in names:
        rows = labels == name
        group_satisfied = satisfied[rows].sum(axis=0)
        group_cost = cost[rows].sum(axis=0)
        start, upgrades = _hull_upgrades(group_satisfied, group_cost)
        weights[name] = np.eye(len(group_cost))[start]
        total_satisfied += group_satisfied[start]
        previous = start
        for model, gain, extra in upgrades:
            steps.append((extra / gain, name, previous, model, gain))
            previous = model
    needed = alpha * len(labels) - total_satisfied
    # Within a group the hull's ratios increase, so sorting by ratio keeps each group's
    # upgrades in hull order (ties broken by the order they were found).
    for _, name, previous, model, gain in sorted(steps, key=lambda step: step[0]):
        if needed <= 0:
            break
        share = min(1.0, needed / gain)
        weights[name][previous] -= share
        weights[name][model] += share
        needed -= share * gain
    return weights
