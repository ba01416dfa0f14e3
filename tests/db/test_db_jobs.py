"""Jobs from the client's side: submit, poll, read results, and only as the owning tenant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.errors import InvalidValue, UnknownJob, UnknownTenant
from db.inference import ModelAnswer, mark_done, mark_failed, record_responses
from db.jobs import (
    COPY_FROM,
    JobProgress,
    JobResult,
    NewRequest,
    create_job,
    job_progress,
    job_results,
)
from db.models import Job, Request, RequestStatus, ZooModel


def _answer(request_id: int, model: ZooModel, cost: float) -> ModelAnswer:
    return ModelAnswer(
        request_id=request_id,
        model_id=model.id,
        text=f"{model.name} says hi",
        tokens=3,
        latency_s=0.1,
        cost=cost,
    )


def test_create_job_stores_queued_requests_in_order(
    sessions: sessionmaker[Session], tenant_id: int
) -> None:
    with sessions.begin() as session:
        job_id, request_ids = create_job(session, tenant_id, ["a", "b", "c"], source="cli")
    assert len(job_id) == 32 and len(request_ids) == 3
    with sessions.begin() as session:
        job = session.get(Job, job_id)
        assert job is not None and (job.tenant_id, job.source, job.n_requests) == (
            tenant_id,
            "cli",
            3,
        )
        rows = session.execute(
            select(Request.id, Request.seq, Request.prompt, Request.status, Request.attempts)
            .where(Request.job_id == job_id)
            .order_by(Request.seq)
        ).all()
    assert [tuple(r) for r in rows] == [
        (request_ids[0], 0, "a", "queued", 0),
        (request_ids[1], 1, "b", "queued", 0),
        (request_ids[2], 2, "c", "queued", 0),
    ]


def test_create_job_bulk(sessions: sessionmaker[Session], tenant_id: int) -> None:
    prompts = [f"prompt {i}" for i in range(2500)]
    with sessions.begin() as session:
        job_id, request_ids = create_job(session, tenant_id, prompts, source="bulk")
    assert len(set(request_ids)) == 2500
    with sessions.begin() as session:
        by_id = dict(
            session.execute(select(Request.id, Request.seq).where(Request.job_id == job_id)).all()
        )
    assert [by_id[request_id] for request_id in request_ids] == list(range(2500))


@pytest.mark.parametrize("n", [3, COPY_FROM])  # a multi-row INSERT; COPY on Postgres
def test_requests_keep_their_custom_ids_and_params(
    sessions: sessionmaker[Session], tenant_id: int, n: int
) -> None:
    requests = [
        NewRequest(f"prompt {i}", f"line-{i}", {"messages": [{"role": "user", "content": "x"}]})
        if i % 2
        else NewRequest(f"prompt {i}")
        for i in range(n)
    ]
    with sessions.begin() as session:
        job_id, request_ids = create_job(session, tenant_id, requests, source="api")
    with sessions.begin() as session:
        rows = session.execute(
            select(Request.id, Request.seq, Request.prompt, Request.custom_id, Request.params,
                   Request.status, Request.created_at)
            .where(Request.job_id == job_id)
            .order_by(Request.seq)
        ).all()  # fmt: skip
    assert [row.id for row in rows] == request_ids
    for request, row in zip(requests, rows, strict=True):
        assert (row.prompt, row.custom_id, row.params) == (
            request.prompt,
            request.custom_id,
            request.params,
        )
        assert row.status == "queued" and row.created_at.tzinfo is not None


def test_create_job_refuses_nonsense(sessions: sessionmaker[Session], tenant_id: int) -> None:
    with sessions.begin() as session:
        with pytest.raises(InvalidValue):
            create_job(session, tenant_id, [], source="cli")
        with pytest.raises(UnknownTenant):
            create_job(session, 999, ["a"], source="cli")


def test_progress_and_results_follow_the_requests(
    sessions: sessionmaker[Session],
    tenant_id: int,
    zoo: list[ZooModel],
    route: Callable[..., list[int]],
) -> None:
    small, _, big = zoo
    with sessions.begin() as session:
        job_id, (r0, r1, r2, r3) = create_job(session, tenant_id, ["w", "x", "y", "z"], "cli")
        assert job_progress(session, job_id, tenant_id) == JobProgress(4, 0, 0, 0)

    route([r0], small.id)
    route([r1], big.id, explored=True)
    route([r2], big.id)
    with sessions.begin() as session:
        # r1 was explored: every model answered, the user is served the biggest.
        record_responses(session, [_answer(r0, small, 1.0)])
        record_responses(
            session, [_answer(r1, m, c) for m, c in zip(zoo, [1.0, 4.0, 20.0], strict=True)]
        )
        assert mark_done(session, [r0, r1, r2]) == [r0, r1]
        assert mark_failed(session, [r2], "triton timed out") == [r2]
        progress = job_progress(session, job_id, tenant_id)
    assert progress == JobProgress(queued=1, routed=0, done=2, failed=1)
    assert (progress.total, progress.finished) == (4, False)

    with sessions.begin() as session:
        results = job_results(session, job_id, tenant_id)
    expected = [
        JobResult(r0, 0, "w", RequestStatus.DONE, None, "llama-1b", "llama-1b says hi", 1.0),
        JobResult(r1, 1, "x", RequestStatus.DONE, None, "llama-70b", "llama-70b says hi", 25.0),
        JobResult(r2, 2, "y", RequestStatus.FAILED, "triton timed out", "llama-70b", None, None),
        JobResult(r3, 3, "z", RequestStatus.QUEUED, None, None, None, None),
    ]
    assert [astuple(r)[:8] for r in results] == [astuple(r)[:8] for r in expected]
    # What the HTTP API's answers add: the served answer's counts, the request's time.
    assert results[0].tokens is not None and results[3].tokens is None
    assert all(r.created_at is not None and r.custom_id is None for r in results)


def test_a_job_is_invisible_to_other_tenants(
    sessions: sessionmaker[Session], tenant_id: int, other_tenant_id: int
) -> None:
    with sessions.begin() as session:
        job_id, _ = create_job(session, tenant_id, ["secret"], "cli")
    with sessions.begin() as session:
        for read in (job_progress, job_results):
            with pytest.raises(UnknownJob) as foreign:
                read(session, job_id, other_tenant_id)
            with pytest.raises(UnknownJob) as missing:
                read(session, "0" * 32, other_tenant_id)
            # Same wording whether the job exists elsewhere or not at all.
            assert str(foreign.value).replace(job_id, "ID") == str(missing.value).replace(
                "0" * 32, "ID"
            )
        assert job_progress(session, job_id, tenant_id).total == 1
