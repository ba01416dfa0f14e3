from __future__ import annotations

import numpy as np
import pytest

from router.mixture import cheapest_mixture, cheapest_stratified_mixture
from router.synthetic import synthetic_zoo


def _expected_cost(weights: np.ndarray, cost: np.ndarray) -> float:
    return float(weights @ cost)


def test_mixes_the_two_hull_models_around_alpha() -> None:
    accuracy = np.array([0.379, 0.544, 0.608])
    cost = np.array([80.0, 394.0, 2003.0])
    weights = cheapest_mixture(accuracy, cost, 0.5)
    assert weights.sum() == pytest.approx(1.0)
    assert weights @ accuracy == pytest.approx(0.5)
    assert weights[2] == 0.0
    # The arc_challenge reference: 0.363 MJ over 1172 requests.
    assert _expected_cost(weights, cost) * 1172 / 1e6 == pytest.approx(0.363, abs=0.005)


def test_brute_force_agrees_on_random_zoos() -> None:
    rng = np.random.default_rng(1)
    grid = np.linspace(0, 1, 101)
    for _ in range(50):
        accuracy, cost = rng.random(3), rng.random(3) * 100
        alpha = float(rng.uniform(0.05, 0.95))
        weights = cheapest_mixture(accuracy, cost, alpha)
        best = np.inf
        for w0 in grid:
            for w1 in grid[: round((1 - w0) * 100) + 1]:
                w = np.array([w0, w1, 1 - w0 - w1])
                if w @ accuracy >= alpha - 1e-9:
                    best = min(best, float(w @ cost))
        if np.isfinite(best):
            assert weights @ accuracy >= alpha - 1e-9
            assert weights @ cost <= best + 1e-6
        else:
            assert weights[np.argmax(accuracy)] == 1.0


def _stratified_cost_and_satisfaction(
    weights: dict[str, np.ndarray], groups: np.ndarray, satisfied: np.ndarray, cost: np.ndarray
) -> tuple[float, float]:
    total_cost = sum(float(cost[groups == g].sum(0) @ w) for g, w in weights.items())
    total_satisfied = sum(float(satisfied[groups == g].sum(0) @ w) for g, w in weights.items())
    return total_cost, total_satisfied


def test_stratified_with_one_group_is_the_global_mixture() -> None:
    rng = np.random.default_rng(3)
    satisfied = (rng.random((400, 3)) < [0.4, 0.6, 0.8]).astype(float)
    cost = rng.random((400, 3)) * [1.0, 5.0, 25.0]
    weights = cheapest_stratified_mixture(["only"] * 400, satisfied, cost, 0.65)
    expected = cheapest_mixture(satisfied.mean(0), cost.mean(0), 0.65)
    np.testing.assert_allclose(weights["only"], expected, atol=1e-12)


def test_stratified_meets_alpha_and_no_feasible_per_group_mixture_is_cheaper() -> None:
    rng = np.random.default_rng(4)
    for _ in range(30):
        n, n_groups = 300, int(rng.integers(2, 5))
        groups = rng.integers(0, n_groups, size=n).astype(str)
        skill = rng.random((n_groups, 3))
        satisfied = (rng.random((n, 3)) < skill[groups.astype(int)]).astype(float)
        cost = rng.random((n, 3)) * rng.random(3) * 100
        alpha = float(rng.uniform(0.2, 0.9))
        weights = cheapest_stratified_mixture(list(groups), satisfied, cost, alpha)
        assert all(w.min() >= -1e-12 and w.sum() == pytest.approx(1.0) for w in weights.values())
        ours, ours_satisfied = _stratified_cost_and_satisfaction(weights, groups, satisfied, cost)
        names = sorted(weights)
        group_satisfied = np.array([satisfied[groups == g].sum(0) for g in names])
        group_cost = np.array([cost[groups == g].sum(0) for g in names])
        if group_satisfied.max(axis=1).sum() < alpha * n:
            continue  # infeasible zoo: every upgrade is bought
        assert ours_satisfied >= alpha * n - 1e-6
        trials = rng.dirichlet(np.ones(3) * 0.3, size=(2000, len(names)))
        feasible = (trials * group_satisfied).sum(axis=(1, 2)) >= alpha * n
        trial_cost = (trials * group_cost).sum(axis=(1, 2))
        assert ours <= trial_cost[feasible].min(initial=np.inf) + 1e-6


def test_stratified_is_never_dearer_than_one_mixture_for_all() -> None:
    zoo = synthetic_zoo(3000, seed=2)
    data = zoo.data
    for alpha in (0.5, 0.6, 0.7):
        weights = cheapest_stratified_mixture(data.groups, data.satisfied, data.cost, alpha)
        ours, _ = _stratified_cost_and_satisfaction(
            weights, np.asarray(data.groups), data.satisfied, data.cost
        )
        single = cheapest_mixture(data.accuracy(), data.mean_cost(), alpha) @ data.cost.sum(0)
        assert ours <= single + 1e-6
