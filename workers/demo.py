"""The main job on the embedded default: one process, no Postgres, Redis or GPU.

SQLite in a temporary folder, Celery's in-memory broker with a worker thread consuming
every queue, and the local Triton zoo on the CPU: the very tasks and queries production
runs, only the URLs differ. A batch of prompts is submitted, a simulated user rates the
answers as they arrive, and a summary compares the SLA and the cost with always using the
most capable model. With a report directory, `messplus report` of the batch is written
there before the database goes. Everything started is stopped and removed at the end.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from router.dataset import ZooData

__all__ = ["DemoResult", "run_demo"]

WARM_START_PROMPTS = 1000


@dataclass(frozen=True)
class DemoResult:
    alpha: float
    satisfaction: float
    rated: int
    cost: float
    cost_unit: str
    biggest_model_cost: float
    mix_cost: float
    served_by: dict[str, int]
    explored: int
    done: int
    failed: int
    seconds: float


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Point this process's settings at the embedded services, and restore them after."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_demo(
    n_prompts: int = 300,
    alpha: float = 0.6,
    data_path: Path | None = None,
    timeout_s: float = 300,
    report_dir: Path | None = None,
) -> DemoResult:
    from router.dataset import load_csv
    from workers.zoo_server import load_zoo, start_zoo_process

    data = load_csv(data_path) if data_path is not None else load_zoo(None)
    workdir = Path(tempfile.mkdtemp(prefix="messplus-demo-"))
    try:
        print(f"starting the local Triton zoo ({data.n_models} models) ...", file=sys.stderr)
        with (
            start_zoo_process(data_path) as zoo,
            _environment(
                {
                    "MESSPLUS_DATABASE_URL": f"sqlite:///{workdir / 'messplus.db'}",
                    "MESSPLUS_BROKER_URL": "memory://",
                    "MESSPLUS_TRITON_URL": zoo.grpc_url,
                    "MESSPLUS_CHUNK_SIZE": "32",
                }
            ),
        ):
            return _run(data, n_prompts, alpha, timeout_s, report_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(
    data: ZooData, n_prompts: int, alpha: float, timeout_s: float, report_dir: Path | None
) -> DemoResult:
    from celery.contrib.testing.worker import start_worker

    from db.jobs import create_job, job_progress
    from db.migrate import upgrade
    from db.predictors import publish_version
    from db.reports import job_summary
    from router.mixture import cheapest_mixture
    from workers import queues, runtime
    from workers.app import app
    from workers.progress import progress_bar
    from workers.provision import add_tenant, register_zoo
    from workers.publish import publish_route
    from workers.simulated_user import SimulatedUser
    from workers.training import train_from_data

    started = time.perf_counter()
    runtime.close()  # forget anything cached from another configuration
    settings = runtime.settings()
    upgrade(settings.database_url)
    sessions = runtime.sessions()
    prompts = list(data.prompts[:n_prompts])
    # Warm start, as a deployment would: a first predictor trained offline on labelled
    # prompts other than the batch's (here the next thousand of the same zoo).
    history = data.subset(slice(n_prompts, n_prompts + WARM_START_PROMPTS))
    with sessions.begin() as session:
        if history.n_requests:
            publish_version(
                session,
                train_from_data(history).to_bytes(),
                {"source": "history", "trained_on": history.n_requests},
                "warm start from labelled history",
                activate=True,
            )
        register_zoo(session, data)
        tenant_id = add_tenant(session, "demo", alpha).id
        job_id, request_ids = create_job(session, tenant_id, prompts, "demo")
    all_queues = [queues.ROUTE, queues.FEEDBACK, *(queues.model_queue(m) for m in data.models)]
    user = SimulatedUser(sessions)
    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=all_queues, shutdown_timeout=30
    ):
        # Prompts arrive a chunk at a time, each answered and rated before the next, as
        # users of a live service would send them: the router learns as the batch goes.
        submitted, quiet_since = 0, time.monotonic()
        with progress_bar(len(prompts), "requests done", "req") as bar:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                ratings = user.rate_new(settings.chunk_size)
                if ratings:
                    quiet_since = time.monotonic()
                with sessions.begin() as session:
                    progress = job_progress(session, job_id, tenant_id)
                    summary = job_summary(session, job_id, tenant_id)
                bar.update(progress.done + progress.failed - bar.n)
                settled = progress.done + progress.failed >= submitted and not ratings
                # Move on once every answer is rated, or the ratings have gone quiet.
                rated = summary.rated >= summary.done or time.monotonic() - quiet_since > 2.0
                if settled and rated:
                    if submitted >= len(request_ids):
                        break
                    publish_route(
                        request_ids[submitted : submitted + settings.chunk_size],
                        settings.chunk_size,
                    )
                    submitted = min(submitted + settings.chunk_size, len(request_ids))
                time.sleep(0.05)
            else:
                raise TimeoutError(
                    f"the demo did not finish within {timeout_s:.0f} s: {progress}, "
                    f"{summary.rated} of {summary.done} served answers rated"
                )
    if report_dir is not None:
        _write_report(sessions, job_id, report_dir)
    runtime.close()
    batch = data.subset(slice(0, len(prompts)))
    biggest = float(batch.cost[:, -1].sum())
    # The cheapest fixed mixture meeting alpha, had the batch's accuracies been known.
    mix = cheapest_mixture(batch.accuracy(), batch.mean_cost(), alpha)
    mix_cost = float(mix @ batch.mean_cost()) * len(prompts)
    return DemoResult(
        alpha=alpha,
        satisfaction=summary.satisfaction,
        rated=summary.rated,
        cost=summary.cost,
        cost_unit=data.cost_unit,
        biggest_model_cost=biggest,
        mix_cost=mix_cost,
        served_by=summary.served_by,
        explored=summary.explored,
        done=summary.done,
        failed=summary.failed,
        seconds=time.perf_counter() - started,
    )


def _write_report(sessions: sessionmaker[Session], job_id: str, report_dir: Path) -> None:
    from db.report_data import job_scope
    from workers.report import gather, write_report

    with sessions.begin() as session:
        data = gather(session, job_scope(session, job_id))
    write_report(data, report_dir)
    print(f"report written to {report_dir / 'index.html'}", file=sys.stderr)
