from __future__ import annotations

import numpy as np
import pytest

from router.messplus import MessPlusSettings, advance_shift, decide_chunk, draws_for, ladder
from router.predictor import SatisfactionPredictor
from router.synthetic import SyntheticZoo


@pytest.fixture(scope="module")
def trained(zoo: SyntheticZoo) -> SatisfactionPredictor:
    predictor = SatisfactionPredictor(zoo.data.n_models)
    x = predictor.featuriser.featurise(zoo.data.prompts[:1000])
    predictor.observe(x, zoo.data.satisfied[:1000], np.ones((1000, 3), dtype=bool))
    predictor.observe_costs(x, zoo.data.cost[:1000])
    return predictor


@pytest.mark.parametrize("use_ladder", [True, False])
def test_a_chunk_decides_exactly_as_one_by_one(
    zoo: SyntheticZoo, trained: SatisfactionPredictor, use_ladder: bool
) -> None:
    settings = MessPlusSettings(c=0.3, ladder=use_ladder, v=20.0 if use_ladder else 1e-3)
    prompts = list(zoo.data.prompts[1000:1300])
    x = trained.featuriser.featurise(prompts)
    cost = zoo.data.mean_cost()
    chunk = decide_chunk(
        settings, 0.7, 5, 18.0, trained, cost, x, draws_for(np.random.default_rng(3), 300)
    )
    rng, queue, shift, single = np.random.default_rng(3), 18.0, 0.0, []
    for i in range(300):
        (decision,) = decide_chunk(
            settings, 0.7, 5 + i, queue, trained, cost, x.row(i), draws_for(rng, 1), shift
        )
        single.append(decision)
        # Ratings come later: the queue moves on by the expected debt, as inside a chunk.
        queue = max(0.0, queue + 0.7 - decision.probabilities[decision.served])
        shift = advance_shift(settings, shift, decision.queue)
    assert [d.served for d in chunk] == [d.served for d in single]
    assert [d.explored for d in chunk] == [d.explored for d in single]
    np.testing.assert_allclose([d.queue for d in chunk], [d.queue for d in single])
    np.testing.assert_allclose([d.queue_shift for d in chunk], [d.queue_shift for d in single])
    assert any(d.explored for d in chunk) and not all(d.explored for d in chunk)
    assert len({d.served for d in chunk if not d.explored}) > 1


def test_exploring_asks_the_models_up_to_the_rungs_hi_and_serves_it(
    zoo: SyntheticZoo, trained: SatisfactionPredictor
) -> None:
    """The dearest model is asked only when it is the rung's hi, even while the 8B might
    miss alpha: it would be paid for an answer the router needs only if the queue
    escalates."""
    x = trained.featuriser.featurise(["anything at all"])
    mean, _ = trained.accuracy()
    decisions = {}
    for alpha in (float(mean[1]), 0.95):
        (decisions[alpha],) = decide_chunk(
            MessPlusSettings(c=1.0),
            alpha,
            1,
            0.0,
            trained,
            zoo.data.mean_cost(),
            x,
            draws_for(np.random.default_rng(0), 1),
        )
    assert all(d.explored for d in decisions.values())
    may_miss = decisions[float(mean[1])]
    assert may_miss.queried == (0, 1) and may_miss.served == 1
    high = decisions[0.95]
    assert high.queried == (0, 1, 2) and high.served == 2


def test_queue_buys_capability(zoo: SyntheticZoo, trained: SatisfactionPredictor) -> None:
    """An empty queue routes to the cheaper model of the rung; a long one escalates."""
    settings = MessPlusSettings(c=0.0)
    x = trained.featuriser.featurise(list(zoo.data.prompts[1000:1400]))
    cost = zoo.data.mean_cost()
    draws = draws_for(np.random.default_rng(0), 400)
    idle = decide_chunk(settings, 0.5, 1000, 0.0, trained, cost, x, draws)
    behind = decide_chunk(settings, 0.5, 1000, 1e4, trained, cost, x, draws)
    assert np.mean([d.served for d in idle]) < np.mean([d.served for d in behind])
    assert max(d.served for d in behind) == 2
    assert all(0 <= d.served < 3 for d in idle + behind)


def test_ladder_skips_a_confidently_dominated_model_and_picks_the_rung() -> None:
    sd = np.full(4, 0.01)
    cost = np.array([1.0, 2.0, 5.0, 10.0])
    # Model 1 costs more than model 0 and is clearly worse: off the ladder.
    rungs = ladder(np.array([0.6, 0.5, 0.8, 0.9]), sd, cost, 0.75, 3.0)
    assert rungs.models == (0, 2, 3)
    assert (rungs.lo, rungs.hi) == (0, 2)
    # Even the cheapest may meet alpha: it mixes with the next one up.
    rungs = ladder(np.array([0.6, 0.7, 0.8, 0.9]), sd, cost, 0.55, 3.0)
    assert (rungs.lo, rungs.hi) == (0, 1)
    # Nobody can: the most accurate model serves.
    rungs = ladder(np.array([0.6, 0.7, 0.8, 0.9]), sd, cost, 0.99, 3.0)
    assert rungs.hi == 3


def test_an_uncertain_model_is_not_written_off() -> None:
    """Few unlucky ratings put a model's mean below alpha; its bound keeps it on the rung."""
    mean = np.array([0.45, 0.30, 0.60])
    sd = np.array([0.01, 0.12, 0.01])
    rungs = ladder(mean, sd, np.array([1.0, 5.0, 25.0]), 0.5, 3.0)
    assert rungs.hi == 1


def test_a_barely_known_cheap_model_does_not_write_off_a_known_middle_one() -> None:
    """Early on the 1B may be known from a few explored answers only, its mean the zoo's
    pooled accuracy: the 8B between it and the 70B is not below a line that uncertain
    (seen on winogrande: the rung became 1B-70B and the 70B served hundreds of requests)."""
    mean = np.array([0.837, 0.731, 0.837])
    sd = np.array([0.185, 0.035, 0.185])
    rungs = ladder(mean, sd, np.array([46.0, 201.0, 1018.0]), 0.7, 3.0)
    assert rungs.models == (0, 1, 2) and (rungs.lo, rungs.hi) == (0, 1)
    # Known neighbours still take a middle model off when it is confidently below them.
    rungs = ladder(
        np.array([0.6, 0.62, 0.9]), np.full(3, 0.005), np.array([1.0, 5.0, 9.0]), 0.8, 3.0
    )
    assert rungs.models == (0, 2)


def test_settings_reject_nonsense() -> None:
    for bad in ({"v": 0.0}, {"c": -0.1}, {"c": 2.0}, {"headroom": -1.0}, {"escalation": 1.0}):
        with pytest.raises(ValueError):
            MessPlusSettings(**bad)  # type: ignore[arg-type]


def test_the_shift_integrates_the_queue_distance_from_v_within_v_only() -> None:
    settings = MessPlusSettings(v=20.0, headroom=4.0, integral_gain=0.01)
    assert advance_shift(settings, 1.0, 30.0) == pytest.approx(1.1)
    assert advance_shift(settings, 1.0, 12.0) == pytest.approx(0.92)
    # Farther than V from V the queue is in a transient of its own: nothing is integrated.
    assert advance_shift(settings, 1.0, 45.0) == 1.0
    # Bounded by V + headroom either way.
    assert advance_shift(settings, 23.95, 39.0) == pytest.approx(24.0)
    assert advance_shift(settings, -23.95, 1.0) == pytest.approx(-24.0)
    assert advance_shift(MessPlusSettings(ladder=False), 5.0, 30.0) == 0.0
    assert advance_shift(MessPlusSettings(integral_gain=0.0), 5.0, 30.0) == 5.0


def test_decisions_are_taken_at_the_queue_plus_its_shift(
    zoo: SyntheticZoo, trained: SatisfactionPredictor
) -> None:
    settings = MessPlusSettings(c=0.0, integral_gain=0.0)
    x = trained.featuriser.featurise(list(zoo.data.prompts[1000:1400]))
    cost = zoo.data.mean_cost()
    draws = draws_for(np.random.default_rng(0), 400)
    shifted = decide_chunk(settings, 0.5, 1000, 30.0, trained, cost, x, draws, -20.0)
    plain = decide_chunk(settings, 0.5, 1000, 10.0, trained, cost, x, draws)
    assert [d.served for d in shifted] == [d.served for d in plain]
    assert shifted[0].queue == 30.0 and shifted[0].queue_shift == -20.0


def test_the_rung_escalates_on_the_queue_not_on_its_shift(
    zoo: SyntheticZoo, trained: SatisfactionPredictor
) -> None:
    # A shift wound up against a growing margin must not promote the rung: only debt does.
    settings = MessPlusSettings(c=0.0, integral_gain=0.0)
    threshold = settings.escalation * settings.v
    x = trained.featuriser.featurise(list(zoo.data.prompts[1000:1100]))
    cost = zoo.data.mean_cost()
    draws = draws_for(np.random.default_rng(0), 100)
    mean, sd = trained.accuracy()
    rung = ladder(mean, sd, cost, 0.5, settings.confidence)
    above = rung.models[rung.models.index(rung.hi) + 1]
    shifted = decide_chunk(settings, 0.5, 1000, threshold - 2, trained, cost, x, draws, threshold)
    in_debt = decide_chunk(settings, 0.5, 1000, threshold + 2, trained, cost, x.row(0), draws[:1])
    assert {d.served for d in shifted} <= {rung.lo, rung.hi}
    assert in_debt[0].served == above
