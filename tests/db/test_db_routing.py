"""Routing writes are safe to redeliver, even to two routers at the same time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Request, RoutingDecision, ZooModel
from db.routing import Decision, asked, asks, claim_queued, record_decisions


def _decision(request: Request, model_id: int, **overrides: object) -> Decision:
    fields: dict[str, object] = {
        "request_id": request.id,
        "tenant_id": request.tenant_id,
        "t": 7,
        "probabilities": [0.2, 0.6, 0.9],
        "virtual_queue": 1.5,
        "explored": False,
        "chosen_model_id": model_id,
    }
    return Decision(**(fields | overrides))  # type: ignore[arg-type]


def test_claim_route_then_claim_again_finds_nothing(
    sessions: sessionmaker[Session], submit: Callable[[list[str]], list[int]], zoo: list[ZooModel]
) -> None:
    ids = submit(["a", "b", "c"])
    with sessions.begin() as session:
        claimed = claim_queued(session, list(reversed(ids)))
        assert [r.id for r in claimed] == ids
        assert [r.attempts for r in claimed] == [1, 1, 1]
        routed = record_decisions(session, [_decision(r, zoo[1].id) for r in claimed])
        assert routed == ids
    with sessions.begin() as session:
        assert claim_queued(session, ids) == []  # the redelivered chunk
        rows = session.execute(
            select(Request.status, Request.served_model_id).where(Request.id.in_(ids))
        ).all()
        assert {tuple(r) for r in rows} == {("routed", zoo[1].id)}


def test_claim_ignores_unknown_and_empty(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert claim_queued(session, []) == []
        assert claim_queued(session, [123456]) == []
        assert record_decisions(session, []) == []


def test_first_decision_wins(
    sessions: sessionmaker[Session], submit: Callable[[list[str]], list[int]], zoo: list[ZooModel]
) -> None:
    (request_id,) = submit(["a"])
    with sessions.begin() as session:
        (request,) = claim_queued(session, [request_id])
        probabilities = np.array([0.1, 0.5, 0.8])  # what the router has in hand
        first = _decision(
            request, zoo[0].id, probabilities=probabilities, predictor_version_id=None
        )
        assert record_decisions(session, [first]) == [request_id]
    with sessions.begin() as session:
        again = _decision(request, zoo[2].id, explored=True)
        assert record_decisions(session, [again]) == []
    with sessions.begin() as session:
        stored = session.get(RoutingDecision, request_id)
        assert stored is not None
        assert (stored.chosen_model_id, stored.explored, stored.t) == (zoo[0].id, False, 7)
        assert stored.probabilities == [0.1, 0.5, 0.8]
        assert stored.decided_at.tzinfo is not None
        assert session.get(Request, request_id).served_model_id == zoo[0].id  # type: ignore[union-attr]


def test_concurrent_redelivery_routes_each_request_once(
    sessions: sessionmaker[Session],
    submit: Callable[[list[str]], list[int]],
    zoo: list[ZooModel],
) -> None:
    ids = submit([f"p{i}" for i in range(200)])
    start = threading.Barrier(4)

    def router(worker: int) -> list[int]:
        start.wait()
        with sessions.begin() as session:
            claimed = claim_queued(session, ids)
            return record_decisions(session, [_decision(r, zoo[worker % 3].id) for r in claimed])

    with ThreadPoolExecutor(4) as pool:
        routed = [request_id for part in pool.map(router, range(4)) for request_id in part]
    assert sorted(routed) == ids
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(RoutingDecision)) == 200
        attempts = session.scalars(select(Request.attempts).where(Request.id.in_(ids)))
        assert set(attempts) == {1}


def test_route_fixture_matches_the_flow(
    route: Callable[..., list[int]],
    submit: Callable[[list[str]], list[int]],
    zoo: list[ZooModel],
) -> None:
    ids = submit(["a", "b"])
    assert route(ids, zoo[0].id) == ids
    assert route(ids, zoo[0].id) == []


def test_a_decision_asks_its_served_model_and_when_explored_every_cheaper_one(
    sessions: sessionmaker[Session],
    submit: Callable[[list[str]], list[int]],
    route: Callable[..., list[int]],
    zoo: list[ZooModel],
) -> None:
    """An explored request served by the middle model asked the small and middle models, not
    the large one: a message asking the large model to answer it is forged or stale."""
    plain, explored_middle, explored_large = submit(["a", "b", "c"])
    route([plain], zoo[1].id)
    route([explored_middle], zoo[1].id, explored=True)
    route([explored_large], zoo[2].id, explored=True)
    with sessions.begin() as session:
        asked_by = {
            model.name: set(
                session.scalars(select(Request.id).where(asked(model)).order_by(Request.id))
            )
            for model in zoo
        }
    small, middle, large = (model.name for model in zoo)
    assert asked_by == {
        small: {explored_middle, explored_large},
        middle: {plain, explored_middle, explored_large},
        large: {explored_large},
    }
    assert [asks(True, 1, position) for position in (0, 1, 2)] == [True, True, False]
    assert [asks(False, 1, position) for position in (0, 1, 2)] == [False, True, False]
