"""Prompts and credentials are never logged above debug level.

Real worker processes (router, one per zoo model, feedback, trainer) log at INFO, as plain
lines and as JSON lines, through a batch with a distinctive word in every prompt and a
database URL with a password: submitted with `messplus submit --wait`, one prompt refused by
the model server, every answer rated, a retraining that reads every prompt, and bad messages
that carry a prompt where none belongs (as an unknown key, an unparseable body, an unknown
task's argument, a model name). Then no log file, nor the client's output, may contain the
word or the password.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import func, make_url, select

from tests.e2e.conftest import require_services
from workers.fleet import local_deployment

pytestmark = pytest.mark.services

WORD = "Quokkaphrase"
PASSWORD = "Log-pw-9Xk2"  # Postgres here trusts local connections and ignores it
N_PROMPTS = 300
TIMEOUT_S = 600


@pytest.mark.parametrize("log_json", ["false", "true"], ids=["plain", "json"])
def test_no_log_line_holds_a_prompt_or_the_password(
    postgres_url: str, redis_url: str, tmp_path: Path, log_json: str
) -> None:
    require_services()
    from db.jobs import job_progress
    from db.models import DeadLetter, Feedback, Response
    from db.tenants import get_tenant_by_name
    from router.synthetic import synthetic_zoo
    from workers import queues, runtime
    from workers.app import app
    from workers.messages import TrainRequest
    from workers.provision import add_tenant, register_zoo
    from workers.simulated_user import SimulatedUser
    from workers.zoo_server import CONTEXT_BYTES, start_zoo_process

    data = synthetic_zoo(2000, seed=0).data
    logs = tmp_path / "logs"
    database_url = make_url(postgres_url).set(password=PASSWORD)
    with (
        start_zoo_process(None) as zoo,
        local_deployment(
            logs,
            database_url=database_url.render_as_string(hide_password=False),
            broker_url=redis_url,
            triton_url=zoo.grpc_url,
            chunk_size="50",
            log_json=log_json,
        ) as fleet,
    ):
        sessions = runtime.sessions()
        with sessions.begin() as session:
            register_zoo(session, data)
            add_tenant(session, "acme", 0.6)
        workers = {"route": queues.ROUTE, "feedback": queues.FEEDBACK, "train": queues.TRAIN}
        workers |= {f"model-{m}": queues.model_queue(m) for m in data.models}
        for name, queue in workers.items():
            fleet.start(name, [queue], loglevel="INFO")

        prompts = [f"{WORD} {prompt}" for prompt in data.prompts[:N_PROMPTS]]
        prompts[7] = f"{WORD} " + "x" * CONTEXT_BYTES  # over the model server's context
        batch = tmp_path / "batch.jsonl"
        batch.write_text("".join(json.dumps(prompt) + "\n" for prompt in prompts))
        command = ["submit", str(batch), "--tenant", "acme", "--wait", "--poll-interval", "0.2"]
        submit = subprocess.run(
            [sys.executable, "-m", "workers.cli", *command],
            env=fleet.environment,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        (logs / "client.log").write_text(submit.stdout + submit.stderr)
        assert submit.returncode == 0, submit.stderr
        job_id = submit.stdout.strip()

        bad_messages = _publish_bad_messages(app, data.models[0])
        user = SimulatedUser(sessions)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            ratings = user.rate_new(50)
            with sessions.begin() as session:
                answers = session.scalar(select(func.count()).select_from(Response))
                rated = session.scalar(select(func.count()).select_from(Feedback))
            if not ratings and rated == answers:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"{rated} of {answers} answers rated\n{fleet.logs()}")
        train_id = uuid.uuid4().hex
        app.send_task(
            "messplus.train", args=[TrainRequest().to_json()], queue=queues.TRAIN, task_id=train_id
        )
        while f"{train_id}] succeeded" not in (logs / "train.log").read_text():
            assert time.monotonic() < deadline, fleet.logs()
            time.sleep(0.2)
        while True:
            with sessions.begin() as session:
                letters = session.scalar(select(func.count()).select_from(DeadLetter))
            if letters == bad_messages:
                break
            assert time.monotonic() < deadline, fleet.logs()
            time.sleep(0.2)
        with sessions.begin() as session:
            tenant_id = get_tenant_by_name(session, "acme").id
            progress = job_progress(session, job_id, tenant_id)
        assert (progress.done, progress.failed) == (N_PROMPTS - 1, 1)

    files = sorted(logs.glob("*.log"))
    assert len(files) == len(workers) + 1
    info_lines = 0
    for path in files:
        text = path.read_text(errors="replace")
        assert WORD not in text, f"a prompt is logged in {path.name}"
        assert PASSWORD not in text, f"the database password is logged in {path.name}"
        info_lines += text.count('"level": "INFO"' if log_json == "true" else " INFO ")
    assert info_lines > N_PROMPTS / 50, "the workers did log at INFO"


def _publish_bad_messages(app: Celery, model: str) -> int:
    """Messages carrying a prompt where none belongs; returns how many were sent."""
    from kombu import Exchange, Queue

    from workers import queues

    prompt = f"{WORD} leaked through a message"
    send = app.send_task
    send("messplus.route", args=[{"request_ids": [1], "prompt": prompt}], queue=queues.ROUTE)
    send("messplus.infer", args=[{"model": f"{prompt}\x00", "request_ids": [1]}],
         queue=queues.model_queue(model))  # fmt: skip
    send("messplus.infer", args=[{"model": prompt, "request_ids": [1]}],
         queue=queues.model_queue(model))  # fmt: skip
    send("messplus.nope", args=[prompt], queue=queues.ROUTE)
    send("messplus.route", args=[{"request_ids": [1]}], kwargs={"prompt": prompt},
         queue=queues.ROUTE)  # fmt: skip
    ratings = [{"request_id": 1, "satisfied": True, "model": prompt}]
    send("messplus.feedback", args=[{"ratings": ratings}], queue=queues.FEEDBACK)
    exchange = Exchange(queues.ROUTE, type="direct")
    with app.connection_for_write() as connection:
        connection.Producer().publish(
            f"{{not json: {prompt}".encode(),
            exchange=exchange,
            routing_key=queues.ROUTE,
            declare=[Queue(queues.ROUTE, exchange, routing_key=queues.ROUTE)],
            content_type="application/json",
            content_encoding="utf-8",
            headers={"task": "messplus.route", "id": uuid.uuid4().hex},
        )
    return 7
