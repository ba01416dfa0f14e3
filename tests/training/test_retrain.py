"""workers.training.retrain on SQLite and Postgres: publish a better predictor, keep the
active one against a worse candidate, dry runs, and the deterministic held-out split."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, update

from db.inference import ModelAnswer, record_responses
from db.models import Feedback, PredictorVersion, ZooModel
from db.predictors import active_version_id, list_versions, publish_version
from router.predictor import SatisfactionPredictor
from tests.training.conftest import Deployment
from workers.training import _Scores, held_out, retrain


def _versions(deployment: Deployment) -> list[tuple[int, bool]]:
    with deployment.sessions.begin() as session:
        return [(v.id, v.active) for v in list_versions(session)]


def test_first_run_beats_base_rates_and_is_published(deployment: Deployment) -> None:
    deployment.rate_zoo()
    report = retrain(deployment.sessions, batch_size=128)
    assert report.accepted and report.published_version_id is not None
    assert report.candidate.log_loss < report.baseline.log_loss
    assert report.active is None and report.active_version_id is None
    assert report.n_models == 3 and report.skipped_ratings == 0
    assert 0 < report.candidate.n < report.train_ratings
    assert _versions(deployment) == [(report.published_version_id, True)]
    with deployment.sessions.begin() as session:
        version = session.get(PredictorVersion, report.published_version_id)
        assert version is not None
        assert version.metrics["log_loss"] == pytest.approx(report.candidate.log_loss)
        assert version.metrics["n"] == report.candidate.n
        assert version.metrics["compared_with"] is None
        loaded = SatisfactionPredictor.from_bytes(version.blob)
    assert loaded.n_models == 3


def test_a_worse_candidate_is_rejected_and_the_active_version_stays(
    deployment: Deployment,
) -> None:
    request_ids = deployment.rate_zoo()
    first = retrain(deployment.sessions)
    assert first.published_version_id is not None
    # Invert every training label: the next candidate learns the opposite of the truth,
    # while the held-out ratings both are judged on stay as they were.
    train_ids = [int(i) for i in np.asarray(request_ids)[~held_out(request_ids, 0.1)]]
    with deployment.sessions.begin() as session:
        session.execute(
            update(Feedback)
            .where(Feedback.request_id.in_(train_ids))
            .values(satisfied=~Feedback.satisfied)
        )
    second = retrain(deployment.sessions)
    assert not second.accepted and second.published_version_id is None
    assert second.active is not None and second.active_version_id == first.published_version_id
    assert second.candidate.log_loss > second.active.log_loss
    assert "stays active" in second.reason
    assert _versions(deployment) == [(first.published_version_id, True)]


def test_the_same_data_again_is_not_better(deployment: Deployment) -> None:
    """A redelivered nightly task trains the same candidate; it must not publish twice."""
    deployment.rate_zoo()
    first = retrain(deployment.sessions, batch_size=97)
    again = retrain(deployment.sessions, batch_size=1000)  # batch boundaries do not matter
    assert again.candidate.log_loss == pytest.approx(first.candidate.log_loss, rel=1e-12)
    assert again.candidate.n == first.candidate.n
    assert not again.accepted and len(_versions(deployment)) == 1


def test_more_feedback_publishes_a_better_version(deployment: Deployment) -> None:
    deployment.rate_zoo(0, 300)
    first = retrain(deployment.sessions)
    assert first.published_version_id is not None
    deployment.rate_zoo(300, 1500)
    second = retrain(deployment.sessions)
    assert second.accepted and second.published_version_id is not None
    assert second.active_version_id == first.published_version_id
    assert second.active is not None and second.candidate.log_loss < second.active.log_loss
    assert _versions(deployment) == [
        (second.published_version_id, True),
        (first.published_version_id, False),
    ]


def test_dry_run_publishes_nothing(deployment: Deployment) -> None:
    deployment.rate_zoo()
    report = retrain(deployment.sessions, dry_run=True)
    assert report.dry_run and report.accepted and report.published_version_id is None
    assert _versions(deployment) == []


def test_no_feedback_publishes_nothing(deployment: Deployment) -> None:
    report = retrain(deployment.sessions)
    assert not report.accepted and report.candidate.n == 0
    assert "no held-out ratings" in report.reason
    assert _versions(deployment) == []


def test_a_version_for_another_zoo_is_not_compared(deployment: Deployment) -> None:
    """Routers ignore a version trained for a different number of models; so does retrain."""
    deployment.rate_zoo()
    with deployment.sessions.begin() as session:
        stale = publish_version(session, SatisfactionPredictor(5).to_bytes(), {}, activate=True)
    report = retrain(deployment.sessions)
    assert report.active is None and report.active_version_id == stale.id
    assert report.accepted and report.published_version_id is not None


def test_ratings_of_disabled_models_are_skipped(deployment: Deployment) -> None:
    deployment.rate_zoo()
    with deployment.sessions.begin() as session:
        session.execute(
            update(ZooModel).where(ZooModel.id == deployment.model_ids[1]).values(enabled=False)
        )
        disabled = len(
            session.scalars(
                select(Feedback.id).where(Feedback.model_id == deployment.model_ids[1])
            ).all()
        )
    report = retrain(deployment.sessions)
    assert report.n_models == 2 and report.skipped_ratings == disabled
    with deployment.sessions.begin() as session:
        assert active_version_id(session) == report.published_version_id


def test_the_split_is_stable_and_about_the_fraction() -> None:
    ids = np.arange(1, 200_001)
    mask = held_out(ids, 0.1)
    assert mask.mean() == pytest.approx(0.1, abs=0.003)
    assert np.array_equal(held_out(ids[::-1], 0.1), mask[::-1])
    assert np.all(held_out(ids, 0.05) <= mask)  # a larger slice contains a smaller one
    # Pinned: changing the hash would move requests between the slices, and the next run
    # would grade the active version on ratings it was trained on.
    assert (np.flatnonzero(mask[:100]) + 1).tolist() == [10, 18, 21, 41, 48, 68, 82, 83]
    with pytest.raises(ValueError, match="holdout"):
        retrain(None, holdout=1.0)  # type: ignore[arg-type]


def test_metrics_by_hand() -> None:
    scores = _Scores()
    scores.add(np.array([0.9, 0.9, 0.2, 0.25]), np.array([1.0, 0.0, 0.0, 0.0]))
    metrics = scores.metrics()
    expected_log_loss = -(np.log(0.9) + np.log(0.1) + np.log(0.8) + np.log(0.75)) / 4
    assert metrics.log_loss == pytest.approx(expected_log_loss)
    assert metrics.brier == pytest.approx((0.01 + 0.81 + 0.04 + 0.0625) / 4)
    # Bins: [0.9, 0.9] -> |0.9 - 0.5| * 2; [0.2, 0.25] -> |0.225 - 0| * 2; over 4 ratings.
    assert metrics.ece == pytest.approx((0.4 * 2 + 0.225 * 2) / 4)
    assert metrics.n == 4


def test_the_cost_model_is_fitted_on_every_answers_charged_cost(deployment: Deployment) -> None:
    request_ids = deployment.rate_zoo()
    data = deployment.zoo.data
    # Every request answered by one model, rated or not: each answer's charged cost.
    answers = [
        ModelAnswer(
            request_id=request_id,
            model_id=deployment.model_ids[r % data.n_models],
            text="answer",
            tokens=1,
            latency_s=0.1,
            cost=float(data.cost[r, r % data.n_models]),
        )
        for r, request_id in enumerate(request_ids)
    ]
    with deployment.sessions.begin() as session:
        record_responses(session, answers)
    report = retrain(deployment.sessions, batch_size=128)
    assert report.cost_answers == len(answers)
    with deployment.sessions.begin() as session:
        version = session.get(PredictorVersion, report.published_version_id)
        assert version is not None
        loaded = SatisfactionPredictor.from_bytes(version.blob)
    x = loaded.featuriser.featurise(list(data.prompts[:300]))
    predicted = loaded.request_costs.predict(x).mean(axis=0)
    np.testing.assert_allclose(predicted, data.cost[:300].mean(axis=0), rtol=0.2)
    assert len(loaded.recent()[1]) > 0
