from __future__ import annotations

import numpy as np
import pytest

from router.policies import POLICIES, PolicyContext, make_policy
from router.replay import replay, summarise
from router.synthetic import SyntheticZoo

ALPHA = 0.62


@pytest.mark.parametrize("name", [*POLICIES, "single:small-8b"])
def test_every_policy_routes_within_the_zoo(zoo: SyntheticZoo, name: str) -> None:
    trace = replay(zoo.data, name, ALPHA, seed=0)
    assert trace.served.min() >= 0 and trace.served.max() < zoo.data.n_models
    assert np.all(trace.cost > 0)
    assert sorted(trace.order) == list(range(zoo.data.n_requests))
    assert np.all(trace.queue >= 0)


def test_messplus_meets_the_sla_cheaper_than_the_fixed_mixture(zoo: SyntheticZoo) -> None:
    """On the synthetic zoo the prompt tells the topic's difficulty, so reading it must pay."""
    runs = {
        name: summarise([replay(zoo.data, name, ALPHA, s) for s in (0, 1)], zoo.data.models, ALPHA)
        for name in ("messplus", "mix", "oracle", "single:large-70b")
    }
    assert runs["messplus"].satisfaction >= ALPHA - 0.005
    assert runs["messplus"].cost < runs["mix"].cost
    assert runs["oracle"].cost < runs["messplus"].cost < runs["single:large-70b"].cost


def test_oracle_buys_exactly_alpha_at_least_cost(zoo: SyntheticZoo) -> None:
    trace = replay(zoo.data, "oracle", ALPHA, seed=0)
    needed = int(np.ceil(ALPHA * zoo.data.n_requests))
    assert trace.satisfied.sum() == needed
    assert trace.cost.sum() <= replay(zoo.data, "mix", ALPHA, seed=0).cost.sum()


def test_mix_meets_alpha_in_expectation(zoo: SyntheticZoo) -> None:
    runs = [replay(zoo.data, "mix", ALPHA, s) for s in range(4)]
    assert np.mean([r.satisfaction for r in runs]) == pytest.approx(ALPHA, abs=0.01)


def test_stratified_meets_alpha_in_expectation_and_undercuts_mix(zoo: SyntheticZoo) -> None:
    runs = [replay(zoo.data, "stratified", ALPHA, s) for s in range(4)]
    mix = [replay(zoo.data, "mix", ALPHA, s) for s in range(4)]
    assert np.mean([r.satisfaction for r in runs]) == pytest.approx(ALPHA, abs=0.01)
    assert np.mean([r.cost.sum() for r in runs]) < np.mean([r.cost.sum() for r in mix])


def test_a_rating_batch_holds_every_rating_until_its_batch_is_routed(zoo: SyntheticZoo) -> None:
    n = zoo.data.n_requests
    whole = replay(zoo.data, "messplus", ALPHA, seed=0, rating_batch=n)
    # No rating reaches the router before the last request: its queue never moves.
    assert np.all(whole.queue[:-1] == whole.queue[0])
    immediate = replay(zoo.data, "messplus", ALPHA, seed=0)
    one_by_one = replay(zoo.data, "messplus", ALPHA, seed=0, rating_batch=1)
    np.testing.assert_array_equal(immediate.served, one_by_one.served)
    np.testing.assert_array_equal(immediate.queue, one_by_one.queue)
    with pytest.raises(ValueError, match="rating batch"):
        replay(zoo.data, "messplus", ALPHA, seed=0, rating_batch=-1)


def test_paper_explores_on_the_schedule(zoo: SyntheticZoo) -> None:
    trace = replay(zoo.data, "paper", ALPHA, seed=0)
    expected = 0.1 * 4 / 3 * zoo.data.n_requests**0.75
    assert trace.explored.sum() == pytest.approx(expected, rel=0.35)
    assert np.all(trace.served[trace.explored] == zoo.data.n_models - 1)


@pytest.mark.parametrize(
    ("name", "message"), [("nope", "unknown policy"), ("single:gpt", "unknown model")]
)
def test_unknown_policy_names_are_rejected(zoo: SyntheticZoo, name: str, message: str) -> None:
    context = PolicyContext(zoo.data.n_models, ALPHA, data=zoo.data)
    with pytest.raises(ValueError, match=message):
        make_policy(name, context, zoo.data.models)


def test_offline_references_need_the_data(zoo: SyntheticZoo) -> None:
    with pytest.raises(ValueError, match="offline reference"):
        make_policy("oracle", PolicyContext(3, ALPHA), zoo.data.models)


def test_sparse_feedback_is_judged_on_every_request(zoo: SyntheticZoo) -> None:
    trace = replay(zoo.data, "messplus", ALPHA, seed=0, feedback_share=0.2)
    assert len(trace.satisfied) == zoo.data.n_requests
    assert trace.satisfaction > ALPHA - 0.05
    with pytest.raises(ValueError, match="feedback share"):
        replay(zoo.data, "messplus", ALPHA, seed=0, feedback_share=0.0)
