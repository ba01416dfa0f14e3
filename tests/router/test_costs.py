"""Per-request costs: learned from observed costs on a zoo priced in dollars per token, kept
relative (the same in any unit), and used by the decision through relative upgrade prices."""

from __future__ import annotations

import numpy as np
import pytest

from router.costs import RequestCosts
from router.features import HashedNgrams
from router.messplus import UpgradePrices
from router.predictor import SatisfactionPredictor
from router.synthetic import SyntheticZoo, synthetic_traffic


@pytest.fixture(scope="module")
def traffic() -> SyntheticZoo:
    return synthetic_traffic(4000, seed=3)


def _fitted(traffic: SyntheticZoo, scale: float = 1.0) -> tuple[RequestCosts, np.ndarray]:
    features = HashedNgrams().featurise(traffic.data.prompts)
    costs = RequestCosts(traffic.data.n_models)
    train = np.arange(3000)
    # Served-only, as a router sees them: each request's cost on one model.
    observed = np.full(traffic.data.cost.shape, np.nan)
    observed[train, train % traffic.data.n_models] = traffic.data.cost[train, train % 2] * scale
    costs.observe(features.rows(train), observed[train])
    return costs, costs.predict(features.rows(np.arange(3000, 4000)))


def test_learns_each_requests_cost_from_served_costs(traffic: SyntheticZoo) -> None:
    _, predicted = _fitted(traffic)
    truth = traffic.data.cost[3000:]
    log_error = np.abs(np.log(predicted) - np.log(truth))
    # Each request's tokens carry 10% lognormal noise the prompt cannot tell (a median
    # error of 7%); one mean per model misses by four times that.
    assert np.median(log_error) < np.log(1.12)
    flat = np.abs(np.log(truth.mean(axis=0)) - np.log(truth))
    assert np.median(log_error) < 0.4 * np.median(flat)


def test_costs_in_another_unit_give_the_same_prices(traffic: SyntheticZoo) -> None:
    _, dollars = _fitted(traffic)
    _, cents = _fitted(traffic, scale=100.0)
    np.testing.assert_allclose(cents, 100.0 * dollars, rtol=1e-6)


def test_one_step_of_many_rows_equals_the_same_rows_one_by_one(traffic: SyntheticZoo) -> None:
    features = HashedNgrams().featurise(traffic.data.prompts[:1])
    together = RequestCosts(2)
    apart = RequestCosts(2)
    together.observe(features, traffic.data.cost[:1])
    apart.observe(features.row(0), traffic.data.cost[:1])
    np.testing.assert_array_equal(together.ngram_weights, apart.ngram_weights)


def test_upgrade_prices_order_requests_by_extra_cost_per_extra_satisfied_answer() -> None:
    recent_p = np.column_stack([np.full(401, 0.5), np.full(401, 0.8)])
    recent_cost = np.column_stack([np.ones(401), 1.0 + np.linspace(1, 9, 401)])
    prices = UpgradePrices(recent_p, recent_cost, np.zeros(2))
    p = [[0.5, 0.8], [0.5, 0.8], [0.5, 0.8], [0.2, 0.8], [0.8, 0.7]]
    cost = [[1.0, 2.0], [1.0, 7.0], [1.0, 21.0], [1.0, 9.0], [1.0, 2.0]]
    cheap, typical, dear, twice_the_gain, no_gain = prices.relative(
        np.array(p), np.array(cost), 0, 1
    )
    # The traffic's median price is 5 / 0.3 (extra cost per extra satisfied answer):
    # relative prices keep their scale inside [1/2, 2].
    assert cheap == 0.5 and typical == pytest.approx(6 / 5) and dear == 2.0
    # The same extra cost buys twice the gain: priced half as dear (16/10, unclipped).
    assert twice_the_gain == pytest.approx(8 / 10)
    # A request the bigger model cannot help is priced dearest: upgraded last.
    assert no_gain == 2.0
    # Before any traffic was seen every request is priced as the typical one.
    empty = UpgradePrices(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(2))
    np.testing.assert_array_equal(empty.relative(np.array(p), np.array(cost), 0, 1), 1.0)


def test_when_most_traffic_gains_nothing_by_the_upgrade_those_requests_stay_on_lo() -> None:
    """A cheap model rated a few times only has a wide upper bound, above the upgrade's for
    most requests: those are priced dearest (served lo, and so rated), any request that
    does gain cheapest. Pricing all of them as typical served hi for good."""
    recent_p = np.column_stack([np.full(10, 0.7), np.full(10, 0.72)])
    recent_cost = np.column_stack([np.ones(10), np.full(10, 5.0)])
    wide_lo = np.array([0.2, 0.01])  # the upper offsets: lo known from 4 ratings
    prices = UpgradePrices(recent_p, recent_cost, wide_lo)
    gains_nothing, gains_much = prices.relative(
        np.array([[0.7, 0.72], [0.3, 0.9]]), np.array([[1.0, 5.0], [1.0, 5.0]]), 0, 1
    )
    assert gains_nothing == 2.0 and gains_much == 0.5


@pytest.mark.parametrize("traffic_gain", [0.3, -0.1, 0.0])
def test_one_requests_price_is_the_batch_price_to_the_bit(traffic_gain: float) -> None:
    """relative_one (one request, in Python floats) must give every price `relative`
    gives: typical, clipped, no gain, no traffic, and traffic whose upgrade gains nothing."""
    rng = np.random.default_rng(7)
    gains = traffic_gain + rng.normal(0, 0.05, (64, 1)) * [0.0, 1.0, 2.0]
    recent_p = 0.5 + gains
    recent_cost = np.exp(rng.normal(0, 1, (64, 3)).cumsum(axis=1))
    p = rng.uniform(0, 1, (500, 3))
    cost = rng.lognormal(0, 1, (500, 3))
    for prices in (
        UpgradePrices(recent_p, recent_cost, np.array([0.01, 0.02, 0.0])),
        UpgradePrices(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(3)),
    ):
        for lo, hi in [(0, 1), (1, 2), (0, 2)]:
            batch = prices.relative(p, cost, lo, hi).tolist()
            rows = zip(p.tolist(), cost.tolist(), strict=True)
            one = [prices.relative_one(r, c, lo, hi) for r, c in rows]
            assert one == batch


def test_a_batch_fit_remembers_the_traffic_at_its_fitted_costs(traffic: SyntheticZoo) -> None:
    """A nightly fit hands over thousands of rows at once: the traffic the router prices
    requests against must be priced by the fitted model, not the untrained one."""
    predictor = SatisfactionPredictor(traffic.data.n_models)
    x = predictor.featuriser.featurise(traffic.data.prompts)
    predictor.observe_costs(x, traffic.data.cost)
    _, remembered = predictor.recent()
    truth = traffic.data.cost[-len(remembered) :]
    assert np.median(np.abs(np.log(remembered) - np.log(truth))) < np.log(1.12)


def test_a_kinds_cost_is_learned_as_one_not_spread_over_its_requests() -> None:
    """Costs set by the kind of request alone (how long its answers run), as on the shared
    benchmarks: each kind's requests are predicted alike and near its true cost."""
    traffic = synthetic_traffic(3000, seed=7)
    kind_cost = np.exp(np.random.default_rng(7).uniform(0.0, 3.0, size=(8, 2)))
    cost = kind_cost[traffic.topic] * np.exp(
        np.random.default_rng(8).normal(0.0, 0.03, size=(3000, 2))
    )
    features = HashedNgrams().featurise(traffic.data.prompts)
    costs = RequestCosts(2)
    costs.observe(features.rows(np.arange(2000)), cost[:2000])
    predicted = np.log(costs.predict(features.rows(np.arange(2000, 3000))))
    held_out = traffic.topic[2000:]
    for kind in range(8):
        of_kind = predicted[held_out == kind]
        assert np.all(of_kind.std(axis=0) < 0.15), kind
        assert np.all(np.abs(of_kind.mean(axis=0) - np.log(kind_cost[kind])) < 0.15), kind
