"""Issue 12.1: one malformed task envelope must never stop a stage.

Every kind of tests/faults/envelopes.py is published with kombu to every queue (route,
feedback, train and each model's) before any real work, so each worker meets ten of them
at the head of its queue. Then a real job goes through the whole pipeline: routed,
answered by every model it was sent to, rated, and a retraining dry run is served. Every
malformed message must end as a dead letter saying what is wrong with it, and no worker may
have exited. One model worker runs a prefork pool, as compose.yaml runs them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.faults.envelopes import MALFORMED, fill, publish_raw

pytestmark = pytest.mark.services

N_PROMPTS = 40
WAIT_S = 180.0


def _wait(condition: Callable[[], bool], what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{logs()}")
        time.sleep(0.1)


def test_every_malformed_envelope_on_every_queue_is_dead_lettered_and_work_goes_on(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    from db.jobs import create_job, job_progress
    from db.models import DeadLetter, Feedback, Request
    from router.synthetic import synthetic_zoo
    from tests.e2e.conftest import require_services
    from workers import queues, runtime
    from workers.app import app
    from workers.fleet import local_deployment
    from workers.messages import TrainRequest
    from workers.provision import add_tenant, register_zoo
    from workers.publish import publish_route
    from workers.simulated_user import SimulatedUser
    from workers.zoo_server import start_zoo_process

    require_services()
    data = synthetic_zoo(500, seed=0).data
    with (
        start_zoo_process(None) as zoo,
        local_deployment(
            tmp_path / "logs",
            database_url=postgres_url,
            broker_url=redis_url,
            triton_url=zoo.grpc_url,
            chunk_size="16",
        ) as fleet,
    ):
        sessions = runtime.sessions()
        with sessions.begin() as session:
            register_zoo(session, data)
            tenant_id = add_tenant(session, "acme", 0.6).id
        nobody = 999_999_999
        tasks = {
            queues.ROUTE: ("messplus.route", {"request_ids": [nobody]}),
            queues.FEEDBACK: ("messplus.feedback", {"rating_ids": [nobody]}),
            queues.TRAIN: ("messplus.train", TrainRequest(dry_run=True).to_json()),
        } | {
            queues.model_queue(model): ("messplus.infer", {"model": model, "request_ids": [nobody]})
            for model in data.models
        }
        # Every queue's head holds every malformed kind before its worker starts.
        for queue, (task, argument) in tasks.items():
            for envelope in MALFORMED:
                body, headers = fill(envelope, task, argument)
                publish_raw(queue, body, headers)
        fleet.start("route", [queues.ROUTE])
        for i, model in enumerate(data.models):
            fleet.start(f"model-{model}", [queues.model_queue(model)], concurrency=1 + (i == 0))
        fleet.start("feedback", [queues.FEEDBACK])
        fleet.start("train", [queues.TRAIN], loglevel="INFO")

        with sessions.begin() as session:
            job_id, request_ids = create_job(
                session, tenant_id, list(data.prompts[:N_PROMPTS]), "after the poison"
            )
        publish_route(request_ids, 16)

        def job_done() -> bool:
            with sessions.begin() as session:
                progress = job_progress(session, job_id, tenant_id)
            assert progress.failed == 0, progress
            return progress.finished

        _wait(job_done, "the job behind the poison", fleet.logs)
        SimulatedUser(sessions).rate_new(16)

        def rated() -> bool:
            """Every served answer rated (explored ones may still be arriving)."""
            with sessions.begin() as session:
                served = select(func.count()).where(
                    Feedback.request_id == Request.id,
                    Feedback.model_id == Request.served_model_id,
                    Request.job_id == job_id,
                )
                return session.scalar(served) == N_PROMPTS

        _wait(rated, "the ratings of the job", fleet.logs)
        train_id = app.send_task(
            "messplus.train", args=[TrainRequest(dry_run=True).to_json()], queue=queues.TRAIN
        ).id
        train_log = tmp_path / "logs" / "train.log"
        _wait(lambda: f"[{train_id}] succeeded" in train_log.read_text(), "a dry run", fleet.logs)

        with sessions.begin() as session:
            letters = session.execute(select(DeadLetter.queue, DeadLetter.reason)).all()
            assert (
                session.scalar(
                    select(func.count()).where(Request.job_id == job_id, Request.status == "done")
                )
                == N_PROMPTS
            )
        exited = {name: p.returncode for name, p in fleet.processes.items() if p.poll() is not None}
        logs = fleet.logs(tail_chars=10**7)
    assert exited == {}, logs
    assert "Unrecoverable error" not in logs
    assert "Connection to broker lost" not in logs
    assert Counter(queue for queue, _ in letters) == {queue: len(MALFORMED) for queue in tasks}
    for queue in tasks:
        reasons = sorted(reason for q, reason in letters if q == queue)
        for envelope in MALFORMED:
            assert any(
                "malformed envelope" in reason and envelope.says in reason for reason in reasons
            ), (queue, envelope, reasons)
