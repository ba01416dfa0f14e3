"""Invariants of the routing core under arbitrary inputs (hypothesis): the queue never goes
negative, every decision names a model of the zoo, every probability is in [0, 1]."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from router.messplus import MessPlusSettings, decide_chunk, draws_for, ladder
from router.predictor import SatisfactionPredictor
from router.sla import advance_queue

prompts = st.lists(st.text(max_size=300), min_size=1, max_size=12)
labels = st.lists(st.booleans(), min_size=3, max_size=3)


@given(
    queue=st.floats(0, 1e6, allow_nan=False),
    alpha=st.floats(0.01, 0.99),
    satisfied=st.floats(0, 1),
)
def test_queue_never_negative(queue: float, alpha: float, satisfied: float) -> None:
    assert advance_queue(queue, alpha, satisfied) >= 0.0


@settings(max_examples=60, deadline=None)
@given(
    texts=prompts,
    history=st.lists(st.tuples(st.text(max_size=80), labels), max_size=20),
    alpha=st.floats(0.01, 0.99),
    queue=st.floats(0, 1e5, allow_nan=False),
    costs=st.lists(st.floats(1e-3, 1e4), min_size=3, max_size=3),
    c=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_decisions_name_a_model_and_probabilities_are_probabilities(
    texts: list[str],
    history: list[tuple[str, list[bool]]],
    alpha: float,
    queue: float,
    costs: list[float],
    c: float,
    seed: int,
) -> None:
    predictor = SatisfactionPredictor(3)
    for text, satisfied in history:
        x = predictor.featuriser.featurise([text])
        predictor.observe(x, np.array([satisfied], dtype=float), np.ones((1, 3), dtype=bool))
    x = predictor.featuriser.featurise(texts)
    decisions = decide_chunk(
        MessPlusSettings(c=c),
        alpha,
        1,
        queue,
        predictor,
        np.array(costs),
        x,
        draws_for(np.random.default_rng(seed), len(texts)),
    )
    assert len(decisions) == len(texts)
    for decision in decisions:
        assert 0 <= decision.served < 3
        assert decision.served in decision.queried
        assert np.all((decision.probabilities >= 0) & (decision.probabilities <= 1))
        assert decision.queue >= 0.0


@given(
    mean=st.lists(st.floats(0, 1), min_size=1, max_size=6),
    alpha=st.floats(0.01, 0.99),
    data=st.data(),
)
def test_the_ladder_always_holds_a_rung_of_the_zoo(
    mean: list[float], alpha: float, data: st.DataObject
) -> None:
    n = len(mean)
    sd = np.array(data.draw(st.lists(st.floats(0, 0.5), min_size=n, max_size=n)))
    cost = np.array(data.draw(st.lists(st.floats(1e-3, 1e4), min_size=n, max_size=n)))
    rungs = ladder(np.array(mean), sd, cost, alpha, 3.0)
    assert rungs.models and set(rungs.models) <= set(range(n))
    assert rungs.lo in rungs.models and rungs.hi in rungs.models
    assert cost[rungs.lo] <= cost[rungs.hi]
