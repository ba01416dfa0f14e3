"""The cheapest fixed random mixture of models whose expected satisfaction meets alpha.

This is RouterBench's "zero router": it never reads the prompt. The optimum of the linear
programme min sum w_m c_m s.t. sum w_m a_m >= alpha, sum w_m = 1, w >= 0 lies on the lower
convex hull of the (accuracy, cost) points and mixes at most two neighbours on it, so
walking the hull from the cheapest model up to alpha is exact and cheap for any zoo size a
provider runs.

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
    return _cheapest_per_group(accuracy[None, :], cost[None, :], alpha)[0]


def cheapest_stratified_mixture(
    groups: Sequence[str],
    satisfied: npt.ArrayLike,
    cost: npt.ArrayLike,
    alpha: float,
) -> dict[str, npt.NDArray[np.float64]]:
    """Per group, the mixture weights of the cheapest per-group fixed mixtures whose overall
    expected satisfaction meets alpha, from per-prompt outcomes (N, M) and costs (N, M).

    If the zoo cannot reach alpha, every group is served by its most accurate model.
    """
    labels = np.asarray(groups)
    satisfied = np.asarray(satisfied, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    names = sorted(set(groups))
    rows = [labels == name for name in names]
    weights = _cheapest_per_group(
        np.array([satisfied[r].sum(axis=0) for r in rows]),
        np.array([cost[r].sum(axis=0) for r in rows]),
        alpha * len(labels),
    )
    return dict(zip(names, weights, strict=True))


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


def _cheapest_per_group(
    satisfied: npt.NDArray[np.float64], cost: npt.NDArray[np.float64], needed: float
) -> npt.NDArray[np.float64]:
    """Weights (G, M) of the cheapest per-group mixtures satisfying `needed` answers in
    total, from each group's satisfied answers and cost per model (G, M).

    One coupling constraint makes this LP exact by greedy: every group starts on its cheapest
    model, then the groups' convex-hull upgrades are bought in order of cost per extra
    satisfied answer until `needed` is reached (the last one fractionally), or all are
    bought. With one group this is the hull walk of the single mixture.
    """
    n_groups, n_models = satisfied.shape
    weights = np.zeros((n_groups, n_models))
    steps: list[tuple[float, int, int, int, float]] = []
    for group in range(n_groups):
        start, upgrades = _hull_upgrades(satisfied[group], cost[group])
        weights[group, start] = 1.0
        needed -= satisfied[group, start]
        previous = start
        for model, gain, extra in upgrades:
            steps.append((extra / gain, group, previous, model, gain))
            previous = model
    # Within a group the hull's ratios increase, so sorting by ratio keeps each group's
    # upgrades in hull order (ties broken by the order they were found).
    for _, group, previous, model, gain in sorted(steps, key=lambda step: step[0]):
        if needed <= 0:
            break
        share = min(1.0, needed / gain)
        weights[group, previous] -= share
        weights[group, model] += share
        needed -= share * gain
    return weights
