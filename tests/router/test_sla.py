from __future__ import annotations

import numpy as np
import pytest

from router.sla import advance_queue, exploration_probability, validate_alpha


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
