"""Issue 3's end-to-end check: 1,000 arc_challenge prompts through Redis, two router
worker processes, one model worker per zoo model on a real Triton replay zoo, a simulated
user rating from the labels, everything persisted in Postgres."""

from __future__ import annotations

import time
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.e2e.conftest import require_services, shared_csv
from workers.fleet import local_deployment

pytestmark = [pytest.mark.services, pytest.mark.shared_data]

N_PROMPTS = 1000
BATCH = 50
ALPHA = 0.5


def test_a_batch_through_the_whole_pipeline(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    require_services()
    data_path = shared_csv("arc_challenge")
    from db.jobs import create_job, job_progress
    from db.models import Feedback, Request, Response, SlaState
    from db.reports import job_summary
    from db.sla import recompute_sla_from_feedback
    from db.sla_calibration import read_ledger, recompute_ledger
    from router.dataset import load_csv
    from router.messplus import MessPlusSettings
    from router.replay import replay
    from workers import queues, runtime
    from workers.provision import add_tenant, register_zoo
    from workers.publish import publish_route
    from workers.simulated_user import SimulatedUser
    from workers.zoo_server import start_zoo_process

    data = load_csv(data_path)
    with (
        start_zoo_process(data_path) as zoo,
        local_deployment(
            tmp_path,
            database_url=postgres_url,
            broker_url=redis_url,
            triton_url=zoo.grpc_url,
            chunk_size="50",
        ) as workers,
    ):
        sessions = runtime.sessions()
        with sessions.begin() as session:
            register_zoo(session, data)
            tenant_id = add_tenant(session, "acme", ALPHA).id
            job_id, request_ids = create_job(
                session, tenant_id, list(data.prompts[:N_PROMPTS]), "arc_challenge"
            )
        for i in (1, 2):
            workers.start(f"route{i}", [queues.ROUTE])
        for model in data.models:
            workers.start(f"model-{model}", [queues.model_queue(model)])
        workers.start("feedback", [queues.FEEDBACK])
        user = SimulatedUser(sessions)
        # Prompts arrive as a stream of batches, each rated before the next arrives, as
        # users of a live service would: the router learns between batches.
        deadline = time.monotonic() + 600
        summary = None
        for start in range(0, N_PROMPTS, BATCH):
            publish_route(request_ids[start : start + BATCH], 50)
            while time.monotonic() < deadline:
                ratings = user.rate_new(200)
                with sessions.begin() as session:
                    progress = job_progress(session, job_id, tenant_id)
                    summary = job_summary(session, job_id, tenant_id)
                if (
                    progress.done + progress.failed >= start + BATCH
                    and not ratings
                    and summary.rated >= summary.done
                ):
                    break
                time.sleep(0.05)
            else:
                pytest.fail(f"pipeline did not finish: {progress}\n{workers.logs()}")
        assert summary is not None

        with sessions.begin() as session:
            # Every request ends done exactly once, served by one stored answer.
            assert summary.done == N_PROMPTS and summary.failed == 0, workers.logs()
            served_answers = session.scalar(
                select(func.count())
                .select_from(Response)
                .join(Request, Request.id == Response.request_id)
                .where(Response.model_id == Request.served_model_id)
            )
            assert served_answers == N_PROMPTS
            # The SLA state equals the one recomputed from the stored feedback.
            state = session.get(SlaState, tenant_id)
            tally = recompute_sla_from_feedback(session, tenant_id)
            assert (state.rated_count, state.satisfied_count) == (
                tally.rated_count,
                tally.satisfied_count,
            )
            queue = MessPlusSettings().initial_queue()
            served_ratings = session.scalars(
                select(Feedback.satisfied)
                .join(Request, Request.id == Feedback.request_id)
                .where(Feedback.model_id == Request.served_model_id)
                .order_by(Feedback.id)
            ).all()
            for satisfied in served_ratings:
                queue = max(0.0, queue + ALPHA - float(satisfied))
            assert state.virtual_queue == pytest.approx(queue, abs=1e-9)
            assert state.request_counter == N_PROMPTS
            # Every served answer is rated, so no expected debt is outstanding, and the
            # running calibration sums equal the ones counted from scratch.
            assert state.pending_debt == pytest.approx(0.0, abs=1e-6)
            ledger = read_ledger(session, tenant_id)
            assert ledger.unrated.sum() == 0 and ledger.rated.sum() == len(served_ratings)
            for running, counted in zip(
                astuple(ledger), astuple(recompute_ledger(session, tenant_id)), strict=True
            ):
                np.testing.assert_allclose(running, counted, atol=1e-6)
    # Satisfaction and cost agree with `messplus replay` of the same policy on the same
    # prompts. The pipeline decides chunks of 50 and hears ratings one batch later, where
    # replay hears each rating before the next request; replay's own spread over seeds is
    # about 0.003 in satisfaction and 4% in cost (median of 9 seeds: one seed in ten pays
    # an early misjudgement of the 8B twice over), so 5 and 3 of those are allowed.
    subset = type(data)(
        name=data.name,
        models=data.models,
        prompts=data.prompts[:N_PROMPTS],
        satisfied=data.satisfied[:N_PROMPTS],
        cost=data.cost[:N_PROMPTS],
        latency_s=data.latency_s[:N_PROMPTS],
    )
    runs = [replay(subset, "messplus", ALPHA, seed) for seed in range(9)]
    replay_cost = np.array([r.cost.sum() for r in runs])
    replay_sat = np.array([r.satisfaction for r in runs])
    print(
        f"pipeline: satisfaction {summary.satisfaction:.4f} cost {summary.cost:.0f} "
        f"explored {summary.explored} served {summary.served_by}; replay: satisfaction "
        f"{replay_sat.mean():.4f}±{replay_sat.std():.4f} cost median {np.median(replay_cost):.0f}"
    )
    assert summary.satisfaction >= ALPHA - 0.01
    assert abs(summary.satisfaction - replay_sat.mean()) <= 0.015
    assert summary.cost == pytest.approx(np.median(replay_cost), rel=0.12)
