from __future__ import annotations

import numpy as np
import pytest

from router.messplus import MessPlusSettings, decide_chunk, draws_for
from router.predictor import SatisfactionPredictor
from router.synthetic import SyntheticZoo


@pytest.fixture(scope="module")
def trained(zoo: SyntheticZoo) -> SatisfactionPredictor:
    predictor = SatisfactionPredictor(zoo.data.n_models)
    x = predictor.featuriser.featurise(zoo.data.prompts[:1000])
    predictor.observe(x, zoo.data.satisfied[:1000], np.ones((1000, 3), dtype=bool))
    return predictor


@pytest.mark.parametrize("thompson", [True, False])
def test_a_chunk_decides_exactly_as_one_by_one(
    zoo: SyntheticZoo, trained: SatisfactionPredictor, thompson: bool
) -> None:
    settings = MessPlusSettings(thompson=thompson, c=0.3)
    prompts = list(zoo.data.prompts[1000:1300])
    x = trained.featuriser.featurise(prompts)
    cost = zoo.data.mean_cost()
    chunk = decide_chunk(
        settings, 0.7, 5, 18.0, trained, cost, x, draws_for(np.random.default_rng(3), 300, 3)
    )
    rng = np.random.default_rng(3)
    single = [
        decide_chunk(settings, 0.7, 5 + i, 18.0, trained, cost, x.row(i), draws_for(rng, 1, 3))[0]
        for i in range(300)
    ]
    assert [d.served for d in chunk] == [d.served for d in single]
    assert [d.explored for d in chunk] == [d.explored for d in single]
    np.testing.assert_allclose(
        [d.probabilities for d in chunk], [d.probabilities for d in single], rtol=1e-12
    )
    assert any(d.explored for d in chunk) and not all(d.explored for d in chunk)


def test_exploring_queries_every_model_and_serves_the_most_capable(
    zoo: SyntheticZoo, trained: SatisfactionPredictor
) -> None:
    x = trained.featuriser.featurise(["anything at all"])
    (decision,) = decide_chunk(
        MessPlusSettings(c=1.0),
        0.7,
        1,
        0.0,
        trained,
        zoo.data.mean_cost(),
        x,
        draws_for(np.random.default_rng(0), 1, 3),
    )
    assert decision.explored and decision.queried == (0, 1, 2) and decision.served == 2


def test_queue_buys_capability(zoo: SyntheticZoo, trained: SatisfactionPredictor) -> None:
    """An empty queue routes to the cheapest model; a long one to capable models."""
    settings = MessPlusSettings(c=0.0, thompson=False)
    x = trained.featuriser.featurise(list(zoo.data.prompts[1000:1400]))
    cost = zoo.data.mean_cost()
    draws = draws_for(np.random.default_rng(0), 400, 3)
    idle = decide_chunk(settings, 0.7, 1000, 0.0, trained, cost, x, draws)
    behind = decide_chunk(settings, 0.7, 1000, 1e4, trained, cost, x, draws)
    assert all(d.served == 0 for d in idle)
    assert np.mean([d.served for d in behind]) > 1.5
    assert all(0 <= d.served < 3 for d in idle + behind)


def test_settings_reject_nonsense() -> None:
    for bad in ({"v": 0.0}, {"c": -0.1}, {"c": 2.0}, {"headroom": -1.0}):
        with pytest.raises(ValueError):
            MessPlusSettings(**bad)  # type: ignore[arg-type]
