"""What the fault drills share: a private deployment, a batch on it, waiting for the batch
through a fault, and the exactly-once checks afterwards.

A drill runs its own Redis, Postgres and CPU Triton zoo (tests/faults/services.py) with one
router and one worker per zoo model (real Celery processes), submits a batch, waits until
part of it is done, breaks something, and waits for every request to reach a final state.
While it waits it runs the reconciler as beat would, and it rides out a database that is
down (a poll that fails is a poll that saw nothing). The figures it measures are printed as
one line per drill (`pytest -s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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

__all__ = [
    "CHUNK_SIZE",
    "Batch",
    "Deployment",
    "Drill",
    "assert_each_done_once",
    "assert_workers_alive",
    "deployment",
    "start_batch",
]

CHUNK_SIZE = 100
POLL_S = 0.2
RECONCILE_EVERY_S = 2.0


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
    stuck_after_s: float | None
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

    def break_midway(self, fault: Callable[[], None], share: float = 0.2) -> None:
        """Run `fault` once `share` of the batch is done and the rest is not."""
        target = int(len(self.batch.request_ids) * share)
        self.at_fault = self.wait(lambda p: p.done >= target, timeout_s=300)
        assert not self.at_fault.finished, "the batch ended before the fault: make it larger"
        started = time.monotonic()
        fault()
        self.fault_s = time.monotonic() - started

    def wait_until_finished(self, timeout_s: float = 600) -> JobProgress:
        return self.wait(lambda p: p.finished, timeout_s)

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


def assert_each_done_once(batch: Batch) -> None:
    """Every done request has its served answer stored once, and every stored answer was
    charged once: per model, the charged count and total equal the stored answers'."""
    with batch.sessions.begin() as session:
        done = session.scalar(
            select(func.count())
            .select_from(Request)
            .where(Request.job_id == batch.job_id, Request.status == "done")
        )
        served = session.scalar(
            select(func.count())
            .select_from(Response)
            .join(Request, Request.id == Response.request_id)
            .where(Request.job_id == batch.job_id, Response.model_id == Request.served_model_id)
        )
        assert served == done
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
    assert charged.keys() == stored.keys()
    for model_id, (answers, cost) in stored.items():
        assert charged[model_id][0] == answers
        assert abs(charged[model_id][1] - cost) <= 1e-9 * max(1.0, abs(cost))


def assert_workers_alive(fleet: Fleet) -> None:
    """No worker exited: each rode out the fault by itself, without a restart."""
    exited = {name: p.returncode for name, p in fleet.processes.items() if p.poll() is not None}
    assert not exited, f"workers exited: {exited}\n{fleet.logs()}"
