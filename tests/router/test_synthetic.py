"""The generated mixed traffic has the structure it promises, so routing changes can be
checked on data whose truth is known (not only on the four shared benchmarks)."""

from __future__ import annotations

import numpy as np

from router.mixture import cheapest_mixture, cheapest_stratified_mixture
from router.synthetic import synthetic_traffic


def test_traffic_is_reproducible_and_kinds_differ_in_what_the_cheap_model_can_do() -> None:
    first, again = synthetic_traffic(4000, seed=3), synthetic_traffic(4000, seed=3)
    assert first.data.prompts == again.data.prompts
    np.testing.assert_array_equal(first.data.satisfied, again.data.satisfied)
    data, kind = first.data, first.topic
    assert data.cost_unit == "USD" and len(set(data.groups)) == 8
    # The latent draw nests the models: what the small one satisfies, the large one does.
    assert np.all(data.satisfied[:, 0] <= data.satisfied[:, 1])
    gaps = [data.satisfied[kind == k].mean(0) @ [-1, 1] for k in range(8)]
    assert min(gaps) < 0.1 and max(gaps) > 0.25
    # Priced per token: a long prompt costs more on every model.
    words = np.array([len(p.split()) for p in data.prompts])
    for m in range(data.n_models):
        assert np.corrcoef(words, data.cost[:, m])[0, 1] > 0.5


def test_knowing_the_kind_of_request_pays_on_it() -> None:
    """The reason the traffic exists: a router that tells kinds apart can spend far less
    than the best single mixture."""
    data = synthetic_traffic(6000, seed=0).data
    groups = np.asarray(data.groups)
    for alpha in (0.7, 0.8):
        per_kind = cheapest_stratified_mixture(data.groups, data.satisfied, data.cost, alpha)
        stratified = sum(float(data.cost[groups == g].sum(0) @ w) for g, w in per_kind.items())
        mix = float(cheapest_mixture(data.accuracy(), data.mean_cost(), alpha) @ data.cost.sum(0))
        assert stratified < 0.85 * mix
