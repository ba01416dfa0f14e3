"""What the fault drills share: a private deployment, a batch on it, waiting for the batch
through a fault, and the exactly-once checks afterwards.

A drill (`run_drill`) runs its own Redis, Postgres and CPU Triton zoo
(tests/faults/services.py) with one router and one worker per zoo model (real Celery
processes), submits N_PROMPTS, waits until a fifth of them are done, breaks something, and
waits for every request to reach a final state. From the fault on it runs the reconciler as
beat would; before, it does not, so that what it publishes again is what the fault
stranded. It rides out a database that is down (a poll that fails is a poll that saw
nothing). Every drill ends by checking that nothing was stored or charged twice and that no
worker exited but those the fault killed. The figures it measures are printed as one line
per drill (`pytest -s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.jobs import JobProgress, create_job, job_progress
from db.models import DeadLetter, ModelStats, Request, Response
from router.synthetic import synthetic_zoo
from tests.faults.services import (
    PrivatePostgres,
    PrivateRedis,
    free_port,
    private_postgres,
    private_redis,
)
from workers import queues, runtime
from workers.fleet import Fleet, local_deployment
from workers.provision import add_tenant, register_zoo
from workers.publish import publish_route
from workers.reconciler import reconcile
from workers.zoo_server import ZooProcess, start_zoo_process

__all__ = ["N_PROMPTS", "Deployment", "Outcome", "assert_each_done_once", "run_drill"]

N_PROMPTS = 5000
FAULT_AT_DONE_SHARE = 0.2
CHUNK_SIZE = 100
POLL_S = 0.2
RECONCILE_EVERY_S = 2.0
FAULT_TIMEOUT_S = 300.0
FINISH_TIMEOUT_S = 600.0


@dataclass
class Deployment:
    """Private Redis, Postgres and Triton zoo, and the fleet of workers using them."""

    redis: PrivateRedis
    postgres: PrivatePostgres
    zoo: ZooProcess
    fleet: Fleet
    zoo_ports: tuple[int, int]
    zoos: ExitStack

    def restart_zoo(self, down_s: float) -> None:
        """Stop Triton, stay down `down_s`, start it again on the same ports."""
        self.zoo.stop()
        time.sleep(down_s)
        grpc_port, http_port = self.zoo_ports
        self.zoo = self.zoos.enter_context(
            start_zoo_process(None, grpc_port=grpc_port, http_port=http_port)
        )


@contextmanager
def deployment(log_dir: Path, **settings: str) -> Iterator[Deployment]:
    """Everything private, with MESSPLUS_ `settings` for this process and its workers; the
    workers stop first, then Triton, Postgres and Redis, whatever happened."""
    with ExitStack() as stack:
        redis = stack.enter_context(private_redis())
        postgres = stack.enter_context(private_postgres())
        zoos = stack.enter_context(ExitStack())
        zoo_ports = (free_port(), free_port())
        zoo = zoos.enter_context(
            start_zoo_process(None, grpc_port=zoo_ports[0], http_port=zoo_ports[1])
        )
        fleet = stack.enter_context(
            local_deployment(
                log_dir,
                database_url=postgres.url,
                broker_url=redis.url,
                triton_url=zoo.grpc_url,
                chunk_size=str(CHUNK_SIZE),
                **settings,
            )
        )
        yield Deployment(redis, postgres, zoo, fleet, zoo_ports, zoos)


@dataclass
class Batch:
    """A submitted job and the figures of its drill."""

    sessions: sessionmaker[Session]
    job_id: str
    tenant_id: int
    request_ids: list[int]
    models: tuple[str, ...]
    published_at: float = field(default_factory=time.monotonic)
    republished: int = 0

    def dead_letters(self) -> int:
        """Messages that failed for good (the deployment's, not only this job's)."""
        with self.sessions.begin() as session:
            return session.scalar(select(func.count()).select_from(DeadLetter)) or 0

    def failure_reasons(self) -> frozenset[str | None]:
        with self.sessions.begin() as session:
            return frozenset(
                session.scalars(
                    select(Request.failure_reason)
                    .where(Request.job_id == self.job_id, Request.status == "failed")
                    .distinct()
                )
            )

    def progress(self) -> JobProgress | None:
        """The job's counts, or None while the database cannot be reached."""
        try:
            with self.sessions.begin() as session:
                return job_progress(session, self.job_id, self.tenant_id)
        except OperationalError:
            return None


def start_batch(fleet: Fleet, n_prompts: int) -> Batch:
    """Register the synthetic zoo and a tenant, start the workers, submit n_prompts."""
    sessions = runtime.sessions()
    data = synthetic_zoo(2000, seed=0).data
    prompts = [data.prompts[i % data.n_requests] for i in range(n_prompts)]
    with sessions.begin() as session:
        register_zoo(session, data)
        tenant_id = add_tenant(session, "acme", 0.6).id
        job_id, request_ids = create_job(session, tenant_id, prompts, "fault drill")
    fleet.start("route", [queues.ROUTE])
    for model in data.models:
        fleet.start(f"model-{model}", [queues.model_queue(model)])
    batch = Batch(sessions, job_id, tenant_id, list(request_ids), data.models)
    publish_route(batch.request_ids, CHUNK_SIZE)
    return batch


@dataclass
class Drill:
    """Waits on a batch, reconciling requests untouched for `stuck_after_s` (None: never)."""

    batch: Batch
    fleet: Fleet
    stuck_after_s: float | None = None
    at_fault: JobProgress | None = None
    fault_s: float = 0.0
    _reconciled_at: float = 0.0

    def wait(self, reached: Callable[[JobProgress], bool], timeout_s: float) -> JobProgress:
        """Poll until `reached(progress)`; fails with the counts and worker logs on timeout."""
        deadline = time.monotonic() + timeout_s
        progress = None
        while time.monotonic() < deadline:
            progress = self.batch.progress() or progress
            if progress is not None and reached(progress):
                return progress
            self._reconcile()
            time.sleep(POLL_S)
        raise AssertionError(f"not reached in {timeout_s:g} s: {progress}\n{self.fleet.logs()}")

    def break_midway(self, fault: Callable[[], None]) -> None:
        """Run `fault` once FAULT_AT_DONE_SHARE of the batch is done and the rest is not."""
        target = int(len(self.batch.request_ids) * FAULT_AT_DONE_SHARE)
        self.at_fault = self.wait(lambda p: p.done >= target, FAULT_TIMEOUT_S)
        assert not self.at_fault.finished, "the batch ended before the fault: make it larger"
        started = time.monotonic()
        fault()
        self.fault_s = time.monotonic() - started

    def _reconcile(self) -> None:
        if self.stuck_after_s is None or time.monotonic() - self._reconciled_at < RECONCILE_EVERY_S:
            return
        self._reconciled_at = time.monotonic()
        try:
            report = reconcile(self.batch.sessions, self.stuck_after_s, CHUNK_SIZE)
        except OperationalError:
            return
        self.batch.republished += report.total

    def summary(self, name: str, progress: JobProgress) -> str:
        elapsed_s = time.monotonic() - self.batch.published_at
        return (
            f"DRILL {name}: requests={progress.total} done={progress.done} "
            f"failed={progress.failed} seconds={elapsed_s:.1f} "
            f"(fault {self.fault_s:.1f} s, at {self.at_fault}) "
            f"reconciler_republished={self.batch.republished} "
            f"dead_letters={self.batch.dead_letters()}"
        )


@dataclass(frozen=True)
class Outcome:
    """What a drill left behind, read before its deployment went away."""

    progress: JobProgress
    republished: int
    dead_letters: int
    failure_reasons: frozenset[str | None]
    models: tuple[str, ...]


def run_drill(
    log_dir: Path,
    name: str,
    fault: Callable[[Deployment], None],
    *,
    stuck_after_s: float | None,
    **settings: str,
) -> Outcome:
    """Break a batch of N_PROMPTS midway with `fault` and wait until every request is final.

    From the fault on, the reconciler publishes again requests untouched for `stuck_after_s`
    (None: it never runs). `settings` are MESSPLUS_ settings for the whole deployment.
    """
    with deployment(log_dir, **settings) as local:
        batch = start_batch(local.fleet, N_PROMPTS)
        drill = Drill(batch, local.fleet)
        drill.break_midway(lambda: fault(local))
        drill.stuck_after_s = stuck_after_s
        progress = drill.wait(lambda p: p.finished, FINISH_TIMEOUT_S)
        print(drill.summary(name, progress))
        assert_each_done_once(batch.sessions, [batch.job_id])
        exited = {
            worker: process.returncode
            for worker, process in local.fleet.processes.items()
            if process.poll() is not None
        }
        assert not exited, f"workers exited: {exited}\n{local.fleet.logs()}"
        return Outcome(
            progress,
            batch.republished,
            batch.dead_letters(),
            batch.failure_reasons(),
            batch.models,
        )


def assert_each_done_once(sessions: sessionmaker[Session], job_ids: Collection[str]) -> None:
    """Every done request of the jobs has exactly one served answer stored, and every stored
    answer was charged once: per model, the charged count and total equal the stored
    answers'. The charges are the database's, so it must hold only these jobs' answers."""
    with sessions.begin() as session:
        served_answers = func.count(Response.id)
        not_once = session.execute(
            select(Request.id, served_answers)
            .outerjoin(
                Response,
                (Response.request_id == Request.id)
                & (Response.model_id == Request.served_model_id),
            )
            .where(Request.job_id.in_(job_ids), Request.status == "done")
            .group_by(Request.id)
            .having(served_answers != 1)
            .limit(10)
        ).all()
        stored = {
            model_id: (answers, cost)
            for model_id, answers, cost in session.execute(
                select(Response.model_id, func.count(), func.sum(Response.cost)).group_by(
                    Response.model_id
                )
            )
        }
        charged = {
            row.model_id: (row.cost_count, row.cost_total)
            for row in session.scalars(select(ModelStats))
            if row.cost_count
        }
    assert not not_once, f"done requests without exactly one served answer: {not_once}"
    assert charged.keys() == stored.keys()
    for model_id, (answers, cost) in stored.items():
        assert charged[model_id][0] == answers
        assert abs(charged[model_id][1] - cost) <= 1e-9 * max(1.0, abs(cost))
