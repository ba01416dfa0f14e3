from __future__ import annotations

import numpy as np
import pytest

from router.mixture import cheapest_mixture


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
