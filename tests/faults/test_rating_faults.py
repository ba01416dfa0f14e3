"""Issue 12's rating faults, on real workers through `messplus feedback` (12.2, 12.4, 12.5 and
"a rating reported as sent reaches the database").

- A request that fails leaves no rating effect: rated while its model workers are stopped,
  the rating is refused (not answered yet); the request then fails, and the tenant's SLA
  state equals the one recomputed from stored decisions and ratings.
- An older rating delivered late never replaces a newer one: a rating's message is taken
  off the queue as a worker killed with it unacknowledged would hold it, a newer rating of
  the same answer is applied, then the old message is delivered again.
- A rating whose message the broker lost is published again by the reconciler.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from workers.fleet import Fleet

pytestmark = pytest.mark.services

WAIT_S = 120.0
REFUSED_PROMPT = "z" * 9000  # over the CPU zoo's 8 KiB context: Triton refuses it


@dataclass
class Deployment:
    fleet: Fleet
    sessions: sessionmaker[Session]
    broker: redis.Redis
    tenant_id: int
    models: tuple[str, ...]
    work_dir: Path

    def messplus(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workers.cli", *args],
            cwd=self.work_dir,
            env=self.fleet.environment,
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )

    def rate(self, *ratings: dict[str, object]) -> subprocess.CompletedProcess[str]:
        path = self.work_dir / f"ratings-{time.monotonic_ns()}.jsonl"
        path.write_text("".join(json.dumps(rating) + "\n" for rating in ratings))
        return self.messplus("feedback", str(path), "--tenant", "acme")

    def wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.fleet.logs()}")
            time.sleep(0.1)

    def statuses(self, request_ids: list[int]) -> list[str]:
        from db.models import Request

        with self.sessions.begin() as session:
            found = dict(
                session.execute(
                    select(Request.id, Request.status).where(Request.id.in_(request_ids))
                ).all()
            )
        return [found[request_id] for request_id in request_ids]

    def pending(self) -> int:
        from db.models import PendingRating

        with self.sessions.begin() as session:
            return session.scalar(select(func.count()).select_from(PendingRating)) or 0


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    from db.scratch import scratch_database
    from router.synthetic import synthetic_zoo
    from tests.e2e.conftest import POSTGRES_ADMIN, claimed_redis_database, require_services
    from workers import queues, runtime
    from workers.fleet import local_deployment
    from workers.provision import add_tenant, register_zoo
    from workers.zoo_server import start_zoo_process

    require_services()
    work_dir = tmp_path_factory.mktemp("rating-faults")
    data = synthetic_zoo(200, seed=0).data
    with (
        claimed_redis_database() as broker_url,
        scratch_database(POSTGRES_ADMIN, "messplus_ratings") as url,
        start_zoo_process(None) as zoo,
        local_deployment(
            work_dir / "logs",
            database_url=url,
            broker_url=broker_url,
            triton_url=zoo.grpc_url,
            chunk_size="16",
        ) as fleet,
    ):
        sessions = runtime.sessions()
        with sessions.begin() as session:
            register_zoo(session, data)
            tenant_id = add_tenant(session, "acme", 0.6).id
        fleet.start("route", [queues.ROUTE])
        yield Deployment(
            fleet, sessions, redis.Redis.from_url(broker_url), tenant_id, data.models, work_dir
        )


def _submit(deployment: Deployment, prompts: list[str]) -> list[int]:
    from db.models import Request

    path = deployment.work_dir / f"batch-{time.monotonic_ns()}.jsonl"
    path.write_text("".join(json.dumps(prompt) + "\n" for prompt in prompts))
    result = deployment.messplus("submit", str(path), "--tenant", "acme")
    assert result.returncode == 0, result.stderr
    with deployment.sessions.begin() as session:
        return list(
            session.scalars(
                select(Request.id)
                .where(Request.job_id == result.stdout.strip())
                .order_by(Request.seq)
            )
        )


def _assert_sla_state_recomputes(deployment: Deployment) -> None:
    """The stored SLA state equals what the stored decisions and ratings say (every rating
    here is a first rating of its answer, so the queue replays in the order they were
    stored)."""
    from dataclasses import astuple

    import numpy as np

    from db.models import Feedback, Request, RequestStatus, RoutingDecision, SlaState
    from db.sla import recompute_sla_from_feedback
    from db.sla_calibration import read_ledger, recompute_ledger
    from router.messplus import MessPlusSettings

    with deployment.sessions.begin() as session:
        tenant_id = deployment.tenant_id
        for kept, counted in zip(
            astuple(read_ledger(session, tenant_id)),
            astuple(recompute_ledger(session, tenant_id)),
            strict=True,
        ):
            np.testing.assert_allclose(kept, counted, atol=1e-9)
        state = session.get_one(SlaState, tenant_id)
        tally = recompute_sla_from_feedback(session, tenant_id)
        assert (state.rated_count, state.satisfied_count) == (
            tally.rated_count,
            tally.satisfied_count,
        )
        rated = select(Feedback.id).where(
            Feedback.request_id == RoutingDecision.request_id,
            Feedback.model_id == RoutingDecision.chosen_model_id,
        )
        unrated_debt = session.scalar(
            select(func.coalesce(func.sum(RoutingDecision.expected_debt), 0.0))
            .join(Request, Request.id == RoutingDecision.request_id)
            .where(
                RoutingDecision.tenant_id == tenant_id,
                Request.status != RequestStatus.FAILED.value,
                ~rated.exists(),
            )
        )
        assert state.pending_debt == pytest.approx(unrated_debt, abs=1e-9)
        queue = MessPlusSettings().initial_queue()
        for satisfied in session.scalars(
            select(Feedback.satisfied)
            .join(Request, Request.id == Feedback.request_id)
            .where(Feedback.tenant_id == tenant_id, Feedback.model_id == Request.served_model_id)
            .order_by(Feedback.id)
        ):
            queue = max(0.0, queue + 0.6 - float(satisfied))
        assert state.virtual_queue == pytest.approx(queue, abs=1e-9)


def test_a_request_that_fails_after_being_rated_leaves_no_rating_effect(
    deployment: Deployment,
) -> None:
    from workers import queues

    refused, fine = _submit(deployment, [REFUSED_PROMPT, "What is two plus two?"])
    deployment.wait(lambda: deployment.statuses([refused, fine]) == ["routed"] * 2, "routing")
    # The model workers are stopped: neither answer exists yet, so neither rating is taken.
    result = deployment.rate(
        {"request_id": refused, "satisfied": True}, {"request_id": fine, "satisfied": True}
    )
    assert result.returncode == 2
    assert f"request {refused} is not answered yet (routed)" in result.stderr
    assert deployment.pending() == 0
    for model in deployment.models:
        deployment.fleet.start(f"model-{model}", [queues.model_queue(model)])
    deployment.fleet.start("feedback", [queues.FEEDBACK])
    deployment.wait(lambda: deployment.statuses([refused, fine]) == ["failed", "done"], "answers")
    result = deployment.rate({"request_id": refused, "satisfied": True})
    assert result.returncode == 2 and "failed: it has no answer to rate" in result.stderr
    assert deployment.rate({"request_id": fine, "satisfied": True}).returncode == 0
    deployment.wait(lambda: deployment.pending() == 0, "the rating to be applied")
    _assert_sla_state_recomputes(deployment)


def test_an_older_rating_delivered_late_never_replaces_a_newer_one(
    deployment: Deployment,
) -> None:
    from db.models import Feedback
    from workers import queues

    (request_id,) = _submit(deployment, ["Name a prime number."])
    deployment.wait(lambda: deployment.statuses([request_id]) == ["done"], "the answer")
    deployment.fleet.stop_one("feedback")
    assert deployment.rate({"request_id": request_id, "satisfied": False}).returncode == 0
    # A worker killed with this message unacknowledged holds it until the broker's
    # visibility timeout; here it is taken off the queue and kept.
    held = deployment.broker.rpop(queues.FEEDBACK)
    assert held is not None
    assert deployment.rate({"request_id": request_id, "satisfied": True}).returncode == 0
    deployment.fleet.start("feedback", [queues.FEEDBACK])
    deployment.wait(lambda: deployment.pending() == 1, "the newer rating to be applied")
    deployment.broker.lpush(queues.FEEDBACK, held)  # the redelivery
    deployment.wait(lambda: deployment.pending() == 0, "the older rating to be delivered")
    with deployment.sessions.begin() as session:
        stored = session.scalars(select(Feedback).where(Feedback.request_id == request_id)).all()
    assert [row.satisfied for row in stored] == [True]
    _assert_sla_state_recomputes(deployment)


def test_a_rating_whose_message_the_broker_lost_still_reaches_the_sla_state(
    deployment: Deployment,
) -> None:
    from db.models import Feedback
    from workers import queues

    (request_id,) = _submit(deployment, ["Name a colour."])
    deployment.wait(lambda: deployment.statuses([request_id]) == ["done"], "the answer")
    deployment.fleet.stop_one("feedback")
    assert deployment.rate({"request_id": request_id, "satisfied": True}).returncode == 0
    deployment.broker.delete(queues.FEEDBACK)  # a broker restarted without its data
    deployment.fleet.start("feedback", [queues.FEEDBACK])
    assert deployment.pending() == 1
    result = deployment.messplus("reconcile", "--older-than", "0")
    assert result.returncode == 0 and "1 pending ratings" in result.stdout, result
    deployment.wait(lambda: deployment.pending() == 0, "the republished rating")
    with deployment.sessions.begin() as session:
        satisfied = session.scalar(
            select(Feedback.satisfied).where(Feedback.request_id == request_id)
        )
    assert satisfied is True
    _assert_sla_state_recomputes(deployment)
