"""Answers are stored once per (request, model); final states are never left."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.inference import ModelAnswer, mark_done, mark_failed, record_responses
from db.models import Request, Response, ZooModel
from workers.errors import InferenceRejected
from workers.inference import fail_served


def _answer(request_id: int, model_id: int, text: str = "42") -> ModelAnswer:
    return ModelAnswer(
        request_id=request_id,
        model_id=model_id,
        text=text,
        tokens=5,
        latency_s=0.25,
        cost=2.5,
        would_satisfy=True,
    )


@pytest.fixture
def routed_ids(
    submit: Callable[[list[str]], list[int]],
    zoo: list[ZooModel],
    route: Callable[..., list[int]],
) -> list[int]:
    """Three requests routed to the middle model."""
    ids = submit(["a", "b", "c"])
    route(ids, zoo[1].id)
    return ids


def _statuses(sessions: sessionmaker[Session], ids: list[int]) -> list[tuple[str, str | None]]:
    with sessions.begin() as session:
        rows = session.execute(
            select(Request.status, Request.failure_reason)
            .where(Request.id.in_(ids))
            .order_by(Request.id)
        ).all()
    return [(status, reason) for status, reason in rows]


def test_same_responses_twice_store_one_row_each(
    sessions: sessionmaker[Session], routed_ids: list[int], zoo: list[ZooModel]
) -> None:
    answers = [_answer(request_id, zoo[1].id) for request_id in routed_ids]
    with sessions.begin() as session:
        assert record_responses(session, answers) == {(r, zoo[1].id) for r in routed_ids}
    with sessions.begin() as session:
        # The redelivered message: nothing new, so nothing is charged again.
        changed = [_answer(request_id, zoo[1].id, text="other") for request_id in routed_ids]
        assert record_responses(session, changed) == set()
        # A new model for one request, and a duplicate inside the same batch.
        extra = _answer(routed_ids[0], zoo[0].id)
        assert record_responses(session, [extra, extra, answers[1]]) == {(routed_ids[0], zoo[0].id)}
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(Response)) == 4
        texts = set(session.scalars(select(Response.text).where(Response.model_id == zoo[1].id)))
        assert texts == {"42"}
        stored = session.scalar(
            select(Response).where(
                Response.request_id == routed_ids[0], Response.model_id == zoo[0].id
            )
        )
        assert stored is not None
        assert (stored.tokens, stored.latency_s, stored.cost, stored.would_satisfy) == (
            5,
            0.25,
            2.5,
            True,
        )
    with sessions.begin() as session:
        assert record_responses(session, []) == set()


def test_done_needs_the_served_answer(
    sessions: sessionmaker[Session], routed_ids: list[int], zoo: list[ZooModel]
) -> None:
    first, second, _ = routed_ids
    with sessions.begin() as session:
        # An explored answer from another model does not finish the request.
        record_responses(session, [_answer(first, zoo[0].id)])
        assert mark_done(session, routed_ids) == []
        record_responses(session, [_answer(first, zoo[1].id), _answer(second, zoo[1].id)])
        assert mark_done(session, routed_ids) == [first, second]
        assert mark_done(session, routed_ids) == []
        assert mark_done(session, []) == []
    assert [s for s, _ in _statuses(sessions, routed_ids)] == ["done", "done", "routed"]


def test_final_states_are_never_left(
    sessions: sessionmaker[Session], routed_ids: list[int], zoo: list[ZooModel]
) -> None:
    done, failed, _ = routed_ids
    with sessions.begin() as session:
        record_responses(session, [_answer(done, zoo[1].id)])
        assert mark_done(session, [done]) == [done]
        assert mark_failed(session, [done, failed], "boom") == [failed]
    with sessions.begin() as session:
        assert mark_failed(session, [failed], "second reason") == []
        record_responses(session, [_answer(failed, zoo[1].id)])
        assert mark_done(session, [failed]) == []
        assert mark_failed(session, [], "nothing") == []
    assert _statuses(sessions, routed_ids) == [("done", None), ("failed", "boom"), ("routed", None)]


def test_queued_requests_can_fail(
    sessions: sessionmaker[Session], submit: Callable[[list[str]], list[int]]
) -> None:
    ids = submit(["unroutable"])
    with sessions.begin() as session:
        assert mark_failed(session, ids, "no model can serve this") == ids
        assert mark_done(session, ids) == []
    assert _statuses(sessions, ids) == [("failed", "no model can serve this")]


def test_a_failure_tells_the_tenant_one_line_and_the_operator_everything(
    sessions: sessionmaker[Session],
    zoo: list[ZooModel],
    routed_ids: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 12.6: the tenant's reason is short; the server's whole message, with its
    traceback and paths, reaches the model worker's log instead."""
    detail = (
        "grpc://triton.internal:8001 model triton-llama-8b: input too long\n"
        'Traceback (most recent call last):\n  File "/opt/tritonserver/model.py", line 9'
    )
    error = InferenceRejected(detail, summary="input too long\nTraceback ...")
    with caplog.at_level(logging.WARNING, logger="workers.inference"):
        failed = fail_served(sessions, zoo[1].name, routed_ids, error)
    assert failed == routed_ids
    reasons = {reason for _, reason in _statuses(sessions, routed_ids)}
    assert reasons == {f"{zoo[1].name}: rejected: input too long"}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/opt/tritonserver/model.py" in logged and "triton.internal:8001" in logged
