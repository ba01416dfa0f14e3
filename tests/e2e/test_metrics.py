"""Issue 6: after a real batch, /metrics says what the database says.

Two tenants send 300 prompts (a few too long for any model) through Redis, two router
processes, a prefork model worker and a solo one on a real Triton zoo, a simulated user
rates every answer, and the largest model's worker cannot reach Triton at all: its
requests are retried, then fail. `messplus metrics serve` then runs as its own process
over the workers' metrics directory and the database, and what it serves over HTTP must
match the database: routed and explored requests per tenant and model, failed requests per
model and reason class, each tenant's virtual queue and satisfaction (since the start and
over the last 100 rated answers), the predictor version every router used and the active
one, and every metric the Grafana dashboard asks for.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.e2e.conftest import require_services
from tests.prometheus import dashboard_metric_names, sample_names, samples, scrape
from workers.fleet import Fleet, local_deployment

pytestmark = pytest.mark.services

PROMPTS_PER_TENANT = 150
CHUNK = 50
WINDOW = 100
BROKEN_MODEL = "large-70b"
# globex's SLA needs the largest model (the 8B satisfies ~0.62) and its rung escalates
# after one answer of debt (escalation 1.25 x V = 50, the queue starts at 49): from then on
# its requests, explored (about half of them) or not, go to the broken model.
TENANTS = {"acme": (0.6, {}), "globex": (0.7, {"c": 0.5, "escalation": 1.25})}
TOO_LONG = (17, 93)
SERVE = (
    sys.executable,
    "-m",
    "workers.cli",
    "metrics",
    "serve",
)  # per tenant: prompts longer than the zoo's context window


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _exporter(environment: dict[str, str], log: Path) -> Iterator[str]:
    """`messplus metrics serve` as a process of its own; yields its /metrics URL."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*SERVE, "--port", "0", "--window", str(WINDOW)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("serving metrics on "), f"{line!r}\n{log.read_text()}"
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(30)


def _expected(session: Session, active_version: int) -> dict[str, dict[tuple[str, ...], float]]:
    """The figures /metrics must show, counted from the rows (not through db/'s queries),
    keyed by their label values in the order of the label names."""
    from db.models import Feedback, Request, RoutingDecision, SlaState, Tenant, ZooModel
    from db.sla_calibration import recompute_ledger
    from router.messplus import MessPlusSettings

    tenant_names = dict(session.execute(select(Tenant.id, Tenant.name)).all())
    model_names = dict(session.execute(select(ZooModel.id, ZooModel.name)).all())
    routed: Counter[tuple[str, ...]] = Counter()
    explored: Counter[tuple[str, ...]] = Counter()
    for tenant_id, model_id, was_explored in session.execute(
        select(RoutingDecision.tenant_id, RoutingDecision.chosen_model_id, RoutingDecision.explored)
    ):
        routed[model_names[model_id], tenant_names[tenant_id]] += 1
        explored[(tenant_names[tenant_id],)] += was_explored
    failed: Counter[tuple[str, ...]] = Counter()
    for served_by, reason in session.execute(
        select(Request.served_model_id, Request.failure_reason).where(Request.status == "failed")
    ):
        # Only model workers fail requests here, each one it was to serve, with the reason
        # stored as "<model>: <class>: <detail>".
        assert served_by is not None
        failed[model_names[served_by], str(reason).split(": ", 2)[1]] += 1
    figures: dict[str, dict[tuple[str, ...], float]] = {
        "messplus_routed_requests_total": dict(routed),
        "messplus_explored_requests_total": {k: v for k, v in explored.items() if v},
        "messplus_failed_requests_total": dict(failed),
        "messplus_predictor_active_version": {(): active_version},
        "messplus_tenant_virtual_queue": {},
        "messplus_tenant_pending_debt": {},
        "messplus_tenant_unrated_debt": {},
        "messplus_tenant_satisfaction": {},
        "messplus_tenant_rated_answers": {},
    }
    for state in session.scalars(select(SlaState)):
        name = tenant_names[state.tenant_id]
        figures["messplus_tenant_virtual_queue"][(name,)] = state.virtual_queue
        figures["messplus_tenant_pending_debt"][(name,)] = state.pending_debt
        tenant = session.get_one(Tenant, state.tenant_id)
        confidence = MessPlusSettings(**tenant.settings).sla_confidence
        ledger = recompute_ledger(session, state.tenant_id)
        figures["messplus_tenant_unrated_debt"][(name,)] = ledger.debt(tenant.alpha, confidence)
        ratings = session.scalars(
            select(Feedback.satisfied)
            .join(Request, Request.id == Feedback.request_id)
            .where(Feedback.tenant_id == state.tenant_id)
            .where(Feedback.model_id == Request.served_model_id)
            .order_by(Feedback.received_at.desc(), Feedback.id.desc())
        ).all()
        for scope, rated in (("since_start", ratings), ("window", ratings[:WINDOW])):
            figures["messplus_tenant_rated_answers"][scope, name] = len(rated)
            figures["messplus_tenant_satisfaction"][scope, name] = sum(rated) / len(rated)
    return figures


def _differences(exposition: str, expected: dict[str, dict[tuple[str, ...], float]]) -> list[str]:
    found = []
    for name, want in expected.items():
        # Keyed like the expectations: label values in the order of the label names.
        got = {
            tuple(v for _, v in labels): value
            for labels, value in samples(exposition, name).items()
        }
        if got.keys() != want.keys() or any(
            got[key] != pytest.approx(want[key], rel=1e-12, abs=1e-12) for key in want
        ):
            found.append(f"{name}: served {got}, database {want}")
    return found


def test_metrics_agree_with_the_database(postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    require_services()
    from db.jobs import create_job, job_progress
    from db.predictors import publish_version
    from db.reports import job_summary
    from router.synthetic import synthetic_zoo
    from workers import queues, runtime
    from workers.provision import add_tenant, register_zoo
    from workers.publish import publish_route
    from workers.simulated_user import SimulatedUser
    from workers.training import train_from_data
    from workers.zoo_server import CONTEXT_BYTES, start_zoo_process

    data = synthetic_zoo(2000, seed=0).data
    logs = tmp_path / "logs"
    with (
        start_zoo_process(None) as zoo,
        local_deployment(
            logs,
            database_url=postgres_url,
            broker_url=redis_url,
            triton_url=zoo.grpc_url,
            chunk_size=str(CHUNK),
            metrics_dir=str(tmp_path / "metrics"),
            infer_retries="1",
        ) as fleet,
    ):
        sessions = runtime.sessions()
        jobs = {}
        with sessions.begin() as session:
            # Warm start on prompts outside the batch, as a deployment would.
            history = data.subset(slice(1000, 2000))
            active = publish_version(
                session, train_from_data(history).to_bytes(), {}, "warm start", activate=True
            ).id
            register_zoo(session, data)
            for i, (name, (alpha, settings)) in enumerate(TENANTS.items()):
                tenant_id = add_tenant(session, name, alpha, settings).id
                start = i * PROMPTS_PER_TENANT
                prompts = list(data.prompts[start : start + PROMPTS_PER_TENANT])
                for index in TOO_LONG:
                    prompts[index] = "x" * (CONTEXT_BYTES + 1)
                jobs[tenant_id] = create_job(session, tenant_id, prompts, name)
        for i in (1, 2):
            fleet.start(f"route{i}", [queues.ROUTE])
        fleet.start("model-tiny-1b", [queues.model_queue("tiny-1b")], concurrency=2)
        fleet.start("model-small-8b", [queues.model_queue("small-8b")])
        fleet.start("feedback", [queues.FEEDBACK])
        unreachable = f"grpc://127.0.0.1:{_closed_port()}"
        broken = Fleet(fleet.environment | {"MESSPLUS_TRITON_URL": unreachable}, logs)
        try:
            broken.start(f"model-{BROKEN_MODEL}", [queues.model_queue(BROKEN_MODEL)])
            for _, request_ids in jobs.values():
                publish_route(request_ids, CHUNK)
            user = SimulatedUser(sessions)
            deadline = time.monotonic() + 600
            while True:
                ratings = user.rate_new(200)
                with sessions.begin() as session:
                    progress = [job_progress(session, j, t) for t, (j, _) in jobs.items()]
                    summaries = [job_summary(session, j, t) for t, (j, _) in jobs.items()]
                settled = all(p.finished for p in progress) and not ratings
                if settled and all(s.rated >= s.done for s in summaries):
                    break
                assert time.monotonic() < deadline, f"{progress}\n{fleet.logs()}"
                time.sleep(0.1)
            failed = sum(s.failed for s in summaries)
            assert 0 < failed < 2 * PROMPTS_PER_TENANT, fleet.logs()

            with _exporter(fleet.environment, logs / "exporter.log") as url:
                # Counts are written just after each commit: wait until the last ones land.
                deadline = time.monotonic() + 120
                while True:
                    exposition = scrape(url)
                    with sessions.begin() as session:
                        differences = _differences(exposition, _expected(session, active))
                    if not differences or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
        finally:
            broken.stop()
    assert differences == [], "\n".join(differences)

    # Every router that decided used the active version, and every process was added up.
    in_use = samples(exposition, "messplus_predictor_version_in_use")
    assert in_use and set(in_use.values()) == {active}, in_use
    assert len(in_use) <= 2
    retries = samples(exposition, "messplus_task_retries_total")
    assert retries[("reason", "InferenceUnavailable"), ("task", "messplus.infer")] >= 1
    errors = samples(exposition, "messplus_triton_errors_total")
    assert errors[("kind", "unavailable"), ("model", BROKEN_MODEL)] >= 1
    # Each refused request failed after at least one failed call on its model (the zoo's
    # model raises on a prompt past its context window: an error of kind "error").
    refused = sum(v for labels, v in errors.items() if ("kind", "unavailable") not in labels)
    failures = samples(exposition, "messplus_failed_requests_total")
    assert refused >= sum(v for labels, v in failures.items() if ("reason", "rejected") in labels)
    answers = samples(exposition, "messplus_triton_request_seconds_count")
    assert {dict(labels)["model"] for labels in answers} == {"tiny-1b", "small-8b"}
    assert samples(exposition, "messplus_database_up") == {(): 1.0}
    assert dashboard_metric_names() - sample_names(exposition) == set()
