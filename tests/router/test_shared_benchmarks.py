"""Issue 2's bar on the shared llama3-zoo data: `messplus` meets each SLA at no more than
1.25 x the cost of the fixed mixture that knows every model's accuracy, with the same
defaults everywhere, and `paper` lands near the authors' published cost. Issue 4's: with
ratings from only 20% of users, the expected satisfaction still meets alpha."""

from __future__ import annotations

import pytest

from router.dataset import load_csv
from router.features import HashedNgrams
from router.replay import replay, summarise
from tests.router.conftest import shared_csv

pytestmark = pytest.mark.shared_data

PAPER_ALPHA = {"arc_challenge": 0.50, "boolq": 0.80, "piqa": 0.78, "winogrande": 0.70}
PAPER_COST_MJ = {"arc_challenge": 0.83, "boolq": 0.90}


@pytest.mark.parametrize("benchmark", sorted(PAPER_ALPHA))
def test_messplus_meets_the_sla_near_the_mixture_cost(benchmark: str) -> None:
    data = load_csv(shared_csv(benchmark))
    alpha = PAPER_ALPHA[benchmark]
    features = HashedNgrams().featurise(data.prompts)
    runs = {
        name: summarise(
            [replay(data, name, alpha, seed, features=features) for seed in (0, 1, 2)],
            data.models,
            alpha,
        )
        for name in ("messplus", "mix")
    }
    ours = runs["messplus"]
    assert ours.satisfaction >= alpha
    assert ours.satisfaction_min >= alpha - 0.01
    assert ours.cost <= 1.25 * runs["mix"].cost


@pytest.mark.parametrize("benchmark", sorted(PAPER_COST_MJ))
def test_paper_lands_near_the_published_cost(benchmark: str) -> None:
    data = load_csv(shared_csv(benchmark))
    alpha = PAPER_ALPHA[benchmark]
    summary = summarise(
        [replay(data, "paper", alpha, seed) for seed in (0, 1, 2)], data.models, alpha
    )
    assert summary.cost / 1e6 == pytest.approx(PAPER_COST_MJ[benchmark], rel=0.30)


@pytest.mark.parametrize("benchmark", sorted(PAPER_ALPHA))
def test_messplus_meets_the_sla_in_expectation_when_one_user_in_five_rates(
    benchmark: str,
) -> None:
    # With ~250-650 ratings a single run's satisfaction is only known to about +-0.02, so
    # the bar is the mean over ten seeds; bench/sparse_feedback.py prints the spread.
    data = load_csv(shared_csv(benchmark))
    alpha = PAPER_ALPHA[benchmark]
    features = HashedNgrams().featurise(data.prompts)
    runs = {
        name: summarise(
            [
                replay(data, name, alpha, seed, features=features, feedback_share=0.2)
                for seed in range(10)
            ],
            data.models,
            alpha,
        )
        for name in ("messplus", "mix")
    }
    assert runs["messplus"].satisfaction >= alpha
    assert runs["messplus"].cost <= 2.0 * runs["mix"].cost
