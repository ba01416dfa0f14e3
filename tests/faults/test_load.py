"""Issue 5's load drill: 8 concurrent submitters of 2,000 prompts each, against 2 router and
3 model worker processes, with nothing lost.

The submitters are 8 `messplus submit` processes, two for each of 4 tenants with different
alphas, started together. A feedback worker stores the ratings a simulated user gives every
answer as it lands, so each tenant's SLA state is moved by ratings while the routers move it
by decisions. Afterwards: all 16,000 requests are done, each with exactly one stored served
answer; no update of any tenant's SLA state was lost (request counters, the rating tallies
and the virtual queue equal what the stored decisions and ratings say, the routers never
decided two requests on the same counter value, and every expected debt a router added was
taken back by its rating); the zoo's model stats equal the sums over stored answers and
ratings. Wall time and requests/s are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import case, func, select

from tests.e2e.conftest import require_services
from tests.faults.drill import assert_each_done_once
from workers.fleet import local_deployment

pytestmark = pytest.mark.services

SUBMITTERS_PER_TENANT = 2
PROMPTS_EACH = 2000
ALPHAS = {"alpha-50": 0.5, "alpha-60": 0.6, "alpha-65": 0.65, "alpha-70": 0.7}
N_REQUESTS = len(ALPHAS) * SUBMITTERS_PER_TENANT * PROMPTS_EACH
TIMEOUT_S = 1800


def test_eight_submitters_lose_no_request_and_no_sla_update(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    require_services()
    from db.jobs import job_progress
    from db.models import Feedback, ModelStats, Request, Response, RoutingDecision, SlaState
    from db.sla import recompute_sla_from_feedback
    from router.messplus import MessPlusSettings
    from router.synthetic import synthetic_zoo
    from workers import queues, runtime
    from workers.provision import add_tenant, register_zoo
    from workers.simulated_user import SimulatedUser
    from workers.zoo_server import start_zoo_process

    data = synthetic_zoo(2000, seed=0).data
    with (
        start_zoo_process(None) as zoo,
        local_deployment(
            tmp_path / "logs",
            database_url=postgres_url,
            broker_url=redis_url,
            triton_url=zoo.grpc_url,
            chunk_size="256",
        ) as fleet,
    ):
        sessions = runtime.sessions()
        tenant_ids = {}
        with sessions.begin() as session:
            register_zoo(session, data)
            for name, alpha in ALPHAS.items():
                tenant_ids[name] = add_tenant(session, name, alpha).id
        for i in (1, 2):
            fleet.start(f"route{i}", [queues.ROUTE])
        for model in data.models:
            fleet.start(f"model-{model}", [queues.model_queue(model)])
        fleet.start("feedback", [queues.FEEDBACK])

        # Submitter k sends the zoo's prompts from offset 250 k on, so the tenants'
        # batches hold different prompts in a different order.
        submissions: list[tuple[str, Path]] = []
        for k in range(len(ALPHAS) * SUBMITTERS_PER_TENANT):
            path = tmp_path / f"batch-{k}.jsonl"
            lines = (data.prompts[(250 * k + i) % data.n_requests] for i in range(PROMPTS_EACH))
            path.write_text("".join(json.dumps(prompt) + "\n" for prompt in lines))
            submissions.append((list(ALPHAS)[k % len(ALPHAS)], path))
        started = time.monotonic()
        submitters = [
            subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "submit", str(path), "--tenant", tenant],
                env=fleet.environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for tenant, path in submissions
        ]
        jobs: list[tuple[str, int]] = []
        for (tenant, _), submitter in zip(submissions, submitters, strict=True):
            out, err = submitter.communicate(timeout=TIMEOUT_S)
            assert submitter.returncode == 0, err
            job_id = re.fullmatch(r"([0-9a-f]{32})\n", out)
            assert job_id is not None, out
            jobs.append((job_id.group(1), tenant_ids[tenant]))
        submitted_s = time.monotonic() - started

        user = SimulatedUser(sessions)
        done_s = None
        deadline = started + TIMEOUT_S
        while time.monotonic() < deadline:
            ratings = user.rate_new(256)
            with sessions.begin() as session:
                finished = [job_progress(session, job, tenant) for job, tenant in jobs]
                answers = session.scalar(select(func.count()).select_from(Response))
                rated = session.scalar(select(func.count()).select_from(Feedback))
            if done_s is None and all(progress.finished for progress in finished):
                done_s = time.monotonic() - started
            # Every answer, served or explored, is rated once the last rating is stored.
            if done_s is not None and not ratings and rated == answers:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"not finished: {finished}, {rated}/{answers} rated\n{fleet.logs()}")
        rated_s = time.monotonic() - started

        with sessions.begin() as session:
            assert [(p.done, p.failed) for p in finished] == [(PROMPTS_EACH, 0)] * len(jobs)
            for name, tenant_id in tenant_ids.items():
                state = session.get_one(SlaState, tenant_id)
                t_values = session.scalars(
                    select(RoutingDecision.t).where(RoutingDecision.tenant_id == tenant_id)
                ).all()
                expected = SUBMITTERS_PER_TENANT * PROMPTS_EACH
                assert state.request_counter == expected, name
                assert sorted(t_values) == list(range(1, expected + 1)), name
                tally = recompute_sla_from_feedback(session, tenant_id)
                assert (state.rated_count, state.satisfied_count) == (
                    tally.rated_count,
                    tally.satisfied_count,
                ), name
                assert state.rated_count == expected, name
                # One feedback worker stores ratings in id order, so replaying them in
                # that order gives the queue every update leaves behind.
                queue = MessPlusSettings().initial_queue()
                for satisfied in session.scalars(
                    select(Feedback.satisfied)
                    .join(Request, Request.id == Feedback.request_id)
                    .where(
                        Feedback.tenant_id == tenant_id,
                        Feedback.model_id == Request.served_model_id,
                    )
                    .order_by(Feedback.id)
                ):
                    queue = max(0.0, queue + ALPHAS[name] - float(satisfied))
                assert state.virtual_queue == pytest.approx(queue, abs=1e-6), name
                assert state.pending_debt == pytest.approx(0.0, abs=1e-6), name
                print(
                    f"LOAD tenant {name}: satisfaction "
                    f"{state.satisfied_count / state.rated_count:.4f}, "
                    f"virtual queue {state.virtual_queue:.2f}"
                )

            ratings_by_model = {
                model_id: (int(successes), trials)
                for model_id, successes, trials in session.execute(
                    select(
                        Feedback.model_id,
                        func.sum(case((Feedback.satisfied, 1), else_=0)),
                        func.count(),
                    ).group_by(Feedback.model_id)
                )
            }
            stats = {
                row.model_id: (row.successes, row.trials)
                for row in session.scalars(select(ModelStats))
                if row.trials
            }
            assert stats == ratings_by_model
            explored = session.scalar(
                select(func.count()).select_from(RoutingDecision).where(RoutingDecision.explored)
            )
        assert_each_done_once(sessions, [job for job, _ in jobs])
    print(
        f"LOAD: {N_REQUESTS} requests from {len(jobs)} submitter processes over "
        f"{len(ALPHAS)} tenants; submitted in {submitted_s:.1f} s, all done after "
        f"{done_s:.1f} s ({N_REQUESTS / done_s:.0f} requests/s), all {answers} answers rated "
        f"after {rated_s:.1f} s; explored {explored}"
    )
