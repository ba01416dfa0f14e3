from __future__ import annotations

import numpy as np
import pytest

from router.sla import UnratedLedger, advance_queue, exploration_probability, validate_alpha


def test_queue_grows_on_failure_drains_on_success_never_negative() -> None:
    assert advance_queue(0.0, 0.7, 0.0) == pytest.approx(0.7)
    assert advance_queue(1.0, 0.7, 1.0) == pytest.approx(0.7)
    assert advance_queue(0.1, 0.7, 1.0) == 0.0


def test_long_run_share_meets_alpha_when_queue_is_bounded() -> None:
    # Q_T >= sum(alpha - s): a bounded queue means the running share is >= alpha - Q_T / T.
    rng = np.random.default_rng(0)
    q, total = 0.0, 0.0
    satisfied = rng.random(5000) < 0.8
    for s in satisfied:
        q = advance_queue(q, 0.7, float(s))
        total += 0.7 - float(s)
    assert q >= total


def test_schedule_matches_the_paper() -> None:
    assert exploration_probability(1, 0.1) == pytest.approx(0.1)
    assert exploration_probability(16, 0.1) == pytest.approx(0.05)
    assert exploration_probability(1, 5.0) == 1.0
    t = np.arange(1, 10_000)
    p = exploration_probability(t, 0.1)
    assert np.all(np.diff(p) <= 0)
    # Expected explorations grow as T^(3/4): c * 4/3 * T^(3/4) up to lower-order terms.
    assert p.sum() == pytest.approx(0.1 * 4 / 3 * 10_000**0.75, rel=0.02)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, float("nan"), "0.5"])
def test_alpha_outside_unit_interval_is_rejected(alpha: object) -> None:
    with pytest.raises(ValueError, match="alpha"):
        validate_alpha(alpha)  # type: ignore[arg-type]


def _served_and_rated(
    seed: int, n: int, share: float, overrate: float
) -> tuple[UnratedLedger, float]:
    """n answers of two models whose predictions overrate them by `overrate`, `share` of
    them rated at random; returns the ledger and the true debt of the unrated ones."""
    rng = np.random.default_rng(seed)
    model = rng.integers(0, 2, n)
    truth = np.where(model == 0, 0.55, 0.8) + rng.uniform(-0.1, 0.1, n)
    predicted = np.clip(truth + overrate, 0, 1)
    satisfied = (rng.random(n) < truth).astype(float)
    rated = rng.random(n) < share
    ledger = UnratedLedger.empty(2)
    for i in range(n):
        ledger.serve(int(model[i]), float(predicted[i]))
        if rated[i]:
            ledger.rate(int(model[i]), float(predicted[i]), float(satisfied[i]))
    return ledger, float(np.sum(0.7 - satisfied[~rated]))


def test_unrated_debt_corrects_an_overrating_predictor() -> None:
    # The predictions overrate every answer by 0.1; uncorrected, the unrated 80% of 4,000
    # answers would look about 320 answers better than they are.
    errors, naive_errors = [], []
    for seed in range(20):
        ledger, true_debt = _served_and_rated(seed, 4000, 0.2, overrate=0.1)
        errors.append(ledger.debt(0.7, confidence=0.0) - true_debt)
        naive = float(np.sum(ledger.unrated * 0.7 - ledger.unrated_predicted))
        naive_errors.append(naive - true_debt)
    assert abs(np.mean(errors)) < 15  # unbiased: the mean error is within its noise
    assert np.mean(naive_errors) < -250


def test_confidence_adds_a_margin_that_vanishes_once_everything_is_rated() -> None:
    ledger, _ = _served_and_rated(0, 1000, 0.2, overrate=0.0)
    assert ledger.debt(0.7, confidence=1.0) > ledger.debt(0.7, confidence=0.0)
    everything_rated, _ = _served_and_rated(0, 1000, 1.0, overrate=0.0)
    assert everything_rated.debt(0.7, confidence=3.0) == pytest.approx(0.0, abs=1e-9)
    assert UnratedLedger.empty(3).debt(0.7, confidence=3.0) == 0.0
