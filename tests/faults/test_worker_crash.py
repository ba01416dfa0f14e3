"""Issue 5's first drill: kill -9 a router worker and a model worker in the middle of a
5,000-request batch. With the reconciler publishing lost messages again, every request
ends done exactly once, no answer is stored twice and no cost is charged twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.e2e.conftest import require_services
from workers.fleet import local_deployment

pytestmark = pytest.mark.services

N_PROMPTS = 5000


def test_killed_workers_lose_and_double_nothing(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    require_services()
    from db.jobs import create_job, job_progress
    from db.models import ModelStats, Request, Response
    from router.synthetic import synthetic_zoo
    from workers import queues, runtime
    from workers.provision import add_tenant, register_zoo
    from workers.publish import publish_route
    from workers.reconciler import reconcile
    from workers.zoo_server import start_zoo_process

    data = synthetic_zoo(2000, seed=0).data
    prompts = [data.prompts[i % data.n_requests] for i in range(N_PROMPTS)]
    with (
        start_zoo_process(None) as zoo,
        local_deployment(
            tmp_path,
            database_url=postgres_url,
            broker_url=redis_url,
            triton_url=zoo.grpc_url,
            chunk_size="100",
        ) as fleet,
    ):
        sessions = runtime.sessions()
        with sessions.begin() as session:
            register_zoo(session, data)
            tenant_id = add_tenant(session, "acme", 0.6).id
            job_id, request_ids = create_job(session, tenant_id, prompts, "crash drill")
        fleet.start("route", [queues.ROUTE])
        for model in data.models:
            fleet.start(f"model-{model}", [queues.model_queue(model)])
        time.sleep(3)
        publish_route(request_ids, 100)
        # Crash both stages mid-batch, then bring replacements up.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions.begin() as session:
                progress = job_progress(session, job_id, tenant_id)
            if progress.done >= N_PROMPTS // 5:
                break
            time.sleep(0.01)
        fleet.kill("route")
        fleet.kill("model-small-8b")
        fleet.start("route-2", [queues.ROUTE])
        fleet.start("model-small-8b-2", [queues.model_queue("small-8b")])
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with sessions.begin() as session:
                progress = job_progress(session, job_id, tenant_id)
            if progress.finished:
                break
            reconcile(sessions, older_than_s=3.0, chunk_size=100)
            time.sleep(1.0)
        assert progress.finished, f"{progress}\n{fleet.logs()}"
        assert progress.done == N_PROMPTS and progress.failed == 0

        with sessions.begin() as session:
            served = session.scalar(
                select(func.count())
                .select_from(Response)
                .join(Request, Request.id == Response.request_id)
                .where(Request.job_id == job_id, Response.model_id == Request.served_model_id)
            )
            assert served == N_PROMPTS
            rows = session.execute(
                select(Response.model_id, func.count(), func.sum(Response.cost)).group_by(
                    Response.model_id
                )
            ).all()
            per_model = {model_id: (answers, cost) for model_id, answers, cost in rows}
            charged = {
                row.model_id: (row.cost_count, row.cost_total)
                for row in session.scalars(select(ModelStats))
            }
            for model_id, (answers, cost) in per_model.items():
                assert charged[model_id][0] == answers
                assert charged[model_id][1] == pytest.approx(cost)
