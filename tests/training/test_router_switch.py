"""Routers pick up a newly published version on their next chunk, without a restart, and
a version switch in the middle of routing loses or repeats no request."""

from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np
import pytest
from sqlalchemy import func, select

from db.model_stats import add_ratings
from db.models import Request, RoutingDecision
from db.predictors import activate, publish_version
from router.predictor import SatisfactionPredictor
from tests.training.conftest import Deployment
from workers.routing import PredictorCache, route_chunk
from workers.training import retrain, train_from_data

CHUNK = 20


def _versions_of(deployment: Deployment, request_ids: list[int]) -> set[int | None]:
    with deployment.sessions.begin() as session:
        return set(
            session.scalars(
                select(RoutingDecision.predictor_version_id).where(
                    RoutingDecision.request_id.in_(request_ids)
                )
            )
        )


def test_a_router_switches_to_a_new_version_on_its_next_chunk(deployment: Deployment) -> None:
    cache, rng = PredictorCache(), np.random.default_rng(0)
    first, second, third = (deployment.submit([f"question {i}?" for i in range(5)]) for _ in "abc")
    assert route_chunk(deployment.sessions, first, rng, cache)
    assert cache.version_id is None and _versions_of(deployment, first) == {None}

    deployment.rate_zoo()
    report = retrain(deployment.sessions)
    assert report.published_version_id is not None
    route_chunk(deployment.sessions, second, rng, cache)
    assert cache.version_id == report.published_version_id and cache.loads == 2
    assert _versions_of(deployment, second) == {report.published_version_id}
    route_chunk(deployment.sessions, third, rng, cache)
    assert cache.loads == 2  # unchanged version: checked, not reloaded


def test_switching_versions_while_routing_routes_every_request_once(
    deployment: Deployment,
) -> None:
    """Two routers are handed every chunk (as after a redelivery) while versions flip.

    The first half is routed under `trained`; then `plain` is activated and routes at least
    one chunk; then a third thread flips the two as fast as the database lets it while both
    routers go on. The choreography makes both versions certain: a free-running flipper
    alone can be starved by SQLite's write lock under load and never flip in time.
    """
    deployment.rate_zoo()
    trained = retrain(deployment.sessions).published_version_id
    with deployment.sessions.begin() as session:
        plain = publish_version(session, SatisfactionPredictor(3).to_bytes(), {}, "base").id
    assert trained is not None
    request_ids = deployment.submit([f"prompt {i} about topic {i % 7}?" for i in range(600)])
    chunks = [request_ids[i : i + CHUNK] for i in range(0, len(request_ids), CHUNK)]
    halfway = len(chunks) // 2
    at_halfway = threading.Barrier(3, timeout=60)  # both routers and this thread
    resume, routed_under_plain, routing = threading.Event(), threading.Event(), threading.Event()
    routed: list[set[int]] = []
    errors: list[BaseException] = []

    def router(seed: int) -> None:
        cache, rng = PredictorCache(), np.random.default_rng(seed)
        try:
            for index, chunk in enumerate(chunks):
                if index == halfway:
                    at_halfway.wait()
                    resume.wait(timeout=60)
                sent = route_chunk(deployment.sessions, chunk, rng, cache)
                routed.append({i for ids in sent.values() for i in ids})
                if index == halfway and sent:
                    routed_under_plain.set()
                time.sleep(0.003)  # the gap a broker leaves between messages
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def switcher() -> None:
        flips = 0
        while routing.is_set():
            with deployment.sessions.begin() as session:
                activate(session, (trained, plain)[flips % 2])
            flips += 1
            time.sleep(0.002)

    routers = [threading.Thread(target=router, args=(seed,)) for seed in (1, 2)]
    for thread in routers:
        thread.start()
    at_halfway.wait()
    with deployment.sessions.begin() as session:
        activate(session, plain)
    resume.set()
    assert routed_under_plain.wait(timeout=60)
    routing.set()
    flipping = threading.Thread(target=switcher)
    flipping.start()
    for thread in routers:
        thread.join()
    routing.clear()
    flipping.join()
    assert not errors, errors

    calls = [ids for ids in routed if ids]
    assert sum(len(ids) for ids in calls) == len(request_ids)  # none twice ...
    assert set().union(*calls) == set(request_ids)  # ... and none lost
    for ids in calls:  # each call decided its requests with one version
        assert len(_versions_of(deployment, sorted(ids))) == 1
    assert _versions_of(deployment, request_ids) == {trained, plain}
    with deployment.sessions.begin() as session:
        decided = session.scalar(
            select(func.count(func.distinct(RoutingDecision.request_id))).where(
                RoutingDecision.request_id.in_(request_ids)
            )
        )
        statuses = set(session.scalars(select(Request.status).where(Request.id.in_(request_ids))))
    assert decided == len(request_ids) and statuses == {"routed"}


def test_a_warm_start_keeps_its_offline_counts_under_the_live_ones(
    deployment: Deployment,
) -> None:
    """`messplus train FILE.csv` counts are labels the live ratings know nothing of:
    routers add the live counts to them. A retrained version's counts are the live
    ratings themselves: the live counts replace them."""
    warm = train_from_data(deployment.zoo.data)
    with deployment.sessions.begin() as session:
        version = publish_version(session, warm.to_bytes(), {"source": "csv"}, activate=True)
        warm_id = version.id
    cache, rng = PredictorCache(), np.random.default_rng(0)
    route_chunk(deployment.sessions, deployment.submit(["first?"]), rng, cache)
    assert cache.version_id == warm_id and cache.predictor is not None
    assert cache.predictor.trials.tolist() == warm.trials.tolist()  # no rating yet
    assert cache.predictor.successes.tolist() == warm.successes.tolist()

    with deployment.sessions.begin() as session:
        add_ratings(session, {deployment.model_ids[0]: (3, 4)})
    route_chunk(deployment.sessions, deployment.submit(["second?"]), rng, cache)
    assert cache.predictor.trials.tolist() == (warm.trials + np.array([4, 0, 0])).tolist()
    assert cache.predictor.successes.tolist() == (warm.successes + np.array([3, 0, 0])).tolist()

    with deployment.sessions.begin() as session:
        version = publish_version(session, warm.to_bytes(), {"train_ratings": 4}, activate=True)
        retrained = version.id
    route_chunk(deployment.sessions, deployment.submit(["third?"]), rng, cache)
    assert cache.version_id == retrained
    assert cache.predictor.trials.tolist() == [4, 0, 0]


def test_a_version_of_an_older_format_is_routed_around_on_base_rates(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    """After an upgrade the active version may be a format this router refuses: routing
    goes on, on base rates and logged, instead of every route task failing."""
    document = json.loads(SatisfactionPredictor(3).to_bytes())
    document["version"] = 2
    with deployment.sessions.begin() as session:
        old = publish_version(session, json.dumps(document).encode(), {}, activate=True).id
    cache, rng = PredictorCache(), np.random.default_rng(0)
    request_ids = deployment.submit(["still routed?", "and this?"])
    with caplog.at_level(logging.WARNING, logger="workers.routing"):
        assert route_chunk(deployment.sessions, request_ids, rng, cache)
    assert cache.version_id is None and _versions_of(deployment, request_ids) == {None}
    assert f"predictor version {old} ignored" in caplog.text and "retrain" in caplog.text
