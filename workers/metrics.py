"""Prometheus metrics: what the workers count, and what the database says at scrape time.

One scrape (`messplus metrics serve`) joins two sources:

- Worker figures, counted where they happen: requests routed per tenant and served model,
  explored requests, the routing stage's latency per chunk, Triton calls (latency and
  errors per model), task retries, failed requests per reason class, ratings stored, and
  the predictor version each router process decides with. With MESSPLUS_METRICS_DIR set,
  every worker process writes them to memory-mapped files of its own in that directory
  (prometheus_client's multiprocess mode) and the exporter adds them up when scraped.
- SLA figures, read from the database at scrape time by DatabaseCollector: each tenant's
  alpha, virtual queue, pending debt and satisfaction (since the start and over the last N
  rated answers, with the 95% Wilson lower bound, as `messplus sla` computes them), the
  active predictor version, and each model's charged answers and cost. They are the
  figures the routers decide on, the same whichever router is asked, and cannot drift from
  the database the way per-process copies would.

Why one exporter per host over a shared directory rather than an HTTP port in every worker:
a prefork worker runs its tasks in child processes, which cannot all bind one port and
which the parent (the one process that could listen) does not see into; several worker
processes on a host would each need a port of their own and Prometheus a target each; and
a process's counts would vanish with the process. Files outlive their process, so a
crashed worker's counts stay in the sums (counters never go back), children replaced by
prefork are added up like any other process, and the database is queried once per scrape,
not once per worker.

Each process's files are named `<type>_<host>-<pid>.db`: worker containers that share the
directory through a volume all run as pid 1 or 7, and the host name (the container id)
keeps them apart. The per-worker gauge (predictor version in use) is labelled with that
name as `pid` and disappears when its worker shuts down.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy.exc import SQLAlchemyError

from db.model_stats import read_model_stats
from db.models import SlaState
from db.predictors import active_version_id
from db.sla_report import SlaReport, sla_report
from db.tenants import list_tenants
from db.zoo import list_models
from router.messplus import MessPlusSettings
from workers.errors import InferenceError, InferenceRejected, InferenceUnavailable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "FAILURE_CLASSES",
    "DatabaseCollector",
    "Metrics",
    "current",
    "exporter_registry",
    "record_to",
]

log = logging.getLogger(__name__)

# Failure reasons are written "<class>: <detail>" (workers.tasks, workers.inference); only
# the class becomes a label, so a free-text message can never explode the series count.
FAILURE_CLASSES = ("unavailable", "rejected")
# Below this many answers a stored SLA sum is rounding error (see _without_dust).
DUST_ANSWERS = 1e-9
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# One routing chunk claims, decides and stores up to MESSPLUS_CHUNK_SIZE requests.
_ROUTE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# One batched Triton call: milliseconds on the CPU zoo, up to the client timeout on a GPU.
_TRITON_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@functools.cache
def _host() -> str:
    # '_' separates the parts of a multiprocess file name; keep it out of the identifier.
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"


def _process_identifier() -> str:
    """Distinct for every process writing into one directory, across hosts and containers."""
    return f"{_host()}-{os.getpid()}"


def _error_kind(exc: InferenceError) -> str:
    if isinstance(exc, InferenceUnavailable):
        return "unavailable"
    if isinstance(exc, InferenceRejected):
        return "rejected"
    return "error"


def _failure_class(reason: str) -> str:
    prefix = reason.partition(":")[0]
    return prefix if prefix in FAILURE_CLASSES else "other"


class Metrics:
    """A worker process's instruments; record only after the database has committed, so
    every figure counts something the database holds."""

    def __init__(self, directory: Path | None) -> None:
        """Instruments writing to `directory` (multiprocess mode), or kept in memory.

        prometheus_client picks where values live when each labelled child is created, from
        a module-level class and environment variable: both are set here, at worker start,
        rather than asking every deployment to export PROMETHEUS_MULTIPROC_DIR beside the
        MESSPLUS_ settings.
        """
        self.directory = directory
        if directory is None:
            os.environ.pop(_MULTIPROC_ENV, None)  # nor may the processes this one starts
            values.ValueClass = values.MutexValue
        else:
            directory.mkdir(parents=True, exist_ok=True)
            os.environ[_MULTIPROC_ENV] = str(directory)
            values.ValueClass = values.MultiProcessValue(_process_identifier)
        # registry=None: workers never expose these themselves, the exporter reads the files.
        self.routed = Counter(
            "messplus_routed_requests",
            "Requests routed, by tenant and the model chosen to serve them",
            ["tenant", "model"],
            registry=None,
        )
        self.explored = Counter(
            "messplus_explored_requests",
            "Routed requests sent to every model to learn (explored share = explored / routed)",
            ["tenant"],
            registry=None,
        )
        self.route_chunk_s = Histogram(
            "messplus_route_chunk_seconds",
            "Wall time of routing one chunk: claim, decide, store, commit",
            buckets=_ROUTE_BUCKETS_S,
            registry=None,
        )
        self.triton_s = Histogram(
            "messplus_triton_request_seconds",
            "Wall time of one successful batched Triton call, by model",
            ["model"],
            buckets=_TRITON_BUCKETS_S,
            registry=None,
        )
        self.triton_errors = Counter(
            "messplus_triton_errors",
            "Triton calls that failed, by model and kind (unavailable, rejected, error)",
            ["model", "kind"],
            registry=None,
        )
        self.retries = Counter(
            "messplus_task_retries",
            "Task retries, by task and the exception retried on",
            ["task", "reason"],
            registry=None,
        )
        self.failed = Counter(
            "messplus_failed_requests",
            "Requests failed, by the model that was to serve them and reason class",
            ["model", "reason"],
            registry=None,
        )
        self.ratings = Counter(
            "messplus_ratings",
            "Ratings applied, by outcome (new, changed, duplicate, stale, rejected)",
            ["outcome"],
            registry=None,
        )

    @functools.cached_property
    def predictor_version(self) -> Gauge:
        # Made on a router's first chunk: model and feedback workers decide nothing and
        # must not show up as routers on version 0.
        return Gauge(
            "messplus_predictor_version_in_use",
            "Predictor version this router process decided its last chunk with (0: base rates)",
            multiprocess_mode="liveall",
            registry=None,
        )

    def chunk_routed(
        self, routed: Mapping[tuple[str, str, bool], int], version_id: int | None, elapsed_s: float
    ) -> None:
        """Count a committed chunk: requests per (tenant, served model, explored)."""
        for (tenant, model, explored), count in routed.items():
            self.routed.labels(tenant, model).inc(count)
            if explored:
                self.explored.labels(tenant).inc(count)
        self.predictor_version.set(version_id or 0)
        self.route_chunk_s.observe(elapsed_s)

    @contextmanager
    def triton_call(self, model: str) -> Iterator[None]:
        """Time one Triton call; a failed call is counted as an error of its kind instead."""
        started = time.perf_counter()
        try:
            yield
        except InferenceError as exc:
            self.triton_errors.labels(model, _error_kind(exc)).inc()
            raise
        self.triton_s.labels(model).observe(time.perf_counter() - started)

    def requests_failed(self, model: str, reason: str, count: int) -> None:
        if count:
            self.failed.labels(model, _failure_class(reason)).inc(count)

    def task_retried(self, task: str, exc: BaseException | None) -> None:
        # Celery swaps an exception that does not pickle for a wrapper that names it.
        reason = getattr(exc, "exc_cls_name", None) or type(exc).__name__
        self.retries.labels(task, "unknown" if exc is None else reason).inc()

    def ratings_stored(self, outcomes: Mapping[str, int]) -> None:
        for outcome, count in outcomes.items():
            if count:
                self.ratings.labels(outcome).inc(count)

    def close(self) -> None:
        """Take this process's per-worker gauge out of the directory at shutdown."""
        if self.directory is not None:
            mark_process_dead(_process_identifier(), str(self.directory))


_instruments: Metrics | None = None


def current() -> Metrics:
    """This process's instruments: in memory, unless the worker called `record_to` at start.

    Stage functions record through here, so tests and benchmarks that call them directly
    need no metrics set-up and write no files.
    """
    global _instruments
    if _instruments is None:
        _instruments = Metrics(None)
    return _instruments


def record_to(directory: Path | None) -> None:
    """From now on this process (and the children it forks) counts into `directory`."""
    global _instruments
    _instruments = Metrics(directory)


@dataclass(frozen=True)
class _TenantFigures:
    report: SlaReport
    virtual_queue: float
    pending_debt: float
    unrated_debt: float


@dataclass(frozen=True)
class _ModelFigures:
    name: str
    cost_unit: str
    answers: int
    cost: float


@dataclass(frozen=True)
class DatabaseFigures:
    """What one scrape reads from the database."""

    tenants: list[_TenantFigures]
    models: list[_ModelFigures]
    active_version_id: int | None


def read_database_figures(session: Session, window: int) -> DatabaseFigures:
    tenants = []
    for tenant in list_tenants(session):
        state = session.get(SlaState, tenant.id)
        assert state is not None, f"tenant {tenant.id} has no SLA state"
        report = sla_report(session, tenant, window=window)
        confidence = MessPlusSettings(**tenant.settings).sla_confidence
        unrated_debt = report.unrated.debt(tenant.alpha, confidence)
        tenants.append(
            _TenantFigures(
                report,
                _without_dust(state.virtual_queue),
                _without_dust(state.pending_debt),
                _without_dust(unrated_debt),
            )
        )
    stats = read_model_stats(session)
    models = [
        _ModelFigures(
            model.name,
            model.cost_unit,
            stats[model.id].cost_count if model.id in stats else 0,
            stats[model.id].cost_total if model.id in stats else 0.0,
        )
        for model in list_models(session)
    ]
    return DatabaseFigures(tenants, models, active_version_id(session))


def _without_dust(answers: float) -> float:
    """A sum of many +-(alpha - p) steps, with the rounding error of its additions removed.

    The stored debts are running sums in the database: once every answer is rated they
    should be 0 but read -1.3e-15, which a dashboard shows as a debt. Anything below
    DUST_ANSWERS (a billionth of an answer, far above the error of a billion additions
    and far below any real debt) is 0; real values, negative ones included, are kept.
    """
    return 0.0 if abs(answers) < DUST_ANSWERS else answers


def database_families(figures: DatabaseFigures | None, window: int) -> list[Metric]:
    """The SLA figures as metric families; None (the database could not be read) gives
    only messplus_database_up 0, rather than stale or made-up figures."""
    up = GaugeMetricFamily(
        "messplus_database_up", "1 if the exporter read the database on this scrape"
    )
    up.add_metric([], 0.0 if figures is None else 1.0)
    tenant = ["tenant"]
    scoped = ["tenant", "scope"]
    alpha = GaugeMetricFamily("messplus_tenant_alpha", "The tenant's SLA target", labels=tenant)
    queue = GaugeMetricFamily(
        "messplus_tenant_virtual_queue", "The tenant's virtual queue Q (SLA debt)", labels=tenant
    )
    pending = GaugeMetricFamily(
        "messplus_tenant_pending_debt",
        "Expected SLA debt of served answers not rated yet",
        labels=tenant,
    )
    unrated = GaugeMetricFamily(
        "messplus_tenant_unrated_debt",
        "Estimated SLA debt of unrated answers the routers add to Q (calibrated, with margin)",
        labels=tenant,
    )
    satisfaction = GaugeMetricFamily(
        "messplus_tenant_satisfaction",
        "Share of rated served answers that satisfied (scope since_start or window)",
        labels=scoped,
    )
    lower = GaugeMetricFamily(
        "messplus_tenant_satisfaction_lower",
        "95% Wilson lower bound of messplus_tenant_satisfaction",
        labels=scoped,
    )
    rated = GaugeMetricFamily(
        "messplus_tenant_rated_answers",
        "Rated served answers behind messplus_tenant_satisfaction",
        labels=scoped,
    )
    window_size = GaugeMetricFamily(
        "messplus_satisfaction_window_answers",
        "Rated answers in the window of scope=window (the latest N)",
    )
    window_size.add_metric([], float(window))
    active = GaugeMetricFamily(
        "messplus_predictor_active_version", "The active predictor version (0: none)"
    )
    answers = CounterMetricFamily(
        "messplus_model_charged_answers", "Answers charged, by model", labels=["model"]
    )
    cost = CounterMetricFamily(
        "messplus_model_charged_cost",
        "Cost charged, by model, in the zoo's cost unit",
        labels=["model", "unit"],
    )
    if figures is not None:
        for figure in figures.tenants:
            name = figure.report.tenant
            alpha.add_metric([name], figure.report.alpha)
            queue.add_metric([name], figure.virtual_queue)
            pending.add_metric([name], figure.pending_debt)
            unrated.add_metric([name], figure.unrated_debt)
            for scope, estimate in (
                ("since_start", figure.report.since_start),
                ("window", figure.report.window),
            ):
                rated.add_metric([name, scope], float(estimate.rated))
                if estimate.satisfaction is not None and estimate.lower is not None:
                    satisfaction.add_metric([name, scope], estimate.satisfaction)
                    lower.add_metric([name, scope], estimate.lower)
        active.add_metric([], float(figures.active_version_id or 0))
        for model in figures.models:
            answers.add_metric([model.name], float(model.answers))
            cost.add_metric([model.name, model.cost_unit], model.cost)
    families: list[Metric] = [up, alpha, queue, pending, unrated, satisfaction, lower, rated]
    families.append(window_size)
    return [*families, active, answers, cost]


class DatabaseCollector:
    """The SLA figures, read from the database on every scrape (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], window: int) -> None:
        self.sessions = sessions
        self.window = window

    def describe(self) -> list[Metric]:
        return database_families(None, self.window)

    def collect(self) -> list[Metric]:
        try:
            with self.sessions.begin() as session:
                figures = read_database_figures(session, self.window)
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read the database: %s", " ".join(str(exc).split()))
            figures = None
        return database_families(figures, self.window)


def exporter_registry(
    sessions: sessionmaker[Session], directory: Path | None, window: int
) -> CollectorRegistry:
    """What `messplus metrics serve` exposes: every worker's files plus the database."""
    registry = CollectorRegistry()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        MultiProcessCollector(registry, path=str(directory))
    registry.register(DatabaseCollector(sessions, window))
    return registry
