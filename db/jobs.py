"""Jobs as clients see them: submit a batch of prompts, poll its progress, read its results.

A job is reachable only through the tenant that submitted it. Asking with another tenant
raises the same `UnknownJob` as asking for an id that never existed, so job ids leak nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.orm import Session

from db.errors import InvalidValue, UnknownJob
from db.models import Job, Request, RequestStatus, Response, ZooModel, utcnow
from db.tenants import get_tenant

__all__ = [
    "JobProgress",
    "JobResult",
    "NewRequest",
    "create_job",
    "create_job_in_batches",
    "find_requests",
    "job_progress",
    "job_results",
    "require_job",
]


# Jobs this large are stored with COPY on Postgres (see _copy_requests).
COPY_FROM = 1000
# Names per lookup query: far below the bound-parameter limits of SQLite and Postgres.
_LOOKUP_CHUNK = 500


@dataclass(frozen=True, slots=True)
class JobProgress:
    """How many of a job's requests are in each state."""

    queued: int
    routed: int
    done: int
    failed: int

    @property
    def total(self) -> int:
        return self.queued + self.routed + self.done + self.failed

    @property
    def finished(self) -> bool:
        """Every request reached a final state; results will not change any more."""
        return self.queued == 0 and self.routed == 0


@dataclass(frozen=True, slots=True)
class JobResult:
    """One request of a job as the client sees it.

    `cost` is what the request cost in total (every model that answered it, so exploration
    shows), None until some model has answered. `request_id` is what ratings name.
    """

    request_id: int
    seq: int
    prompt: str
    status: RequestStatus
    failure_reason: str | None
    served_model: str | None
    text: str | None
    cost: float | None
    # What the HTTP API's answers carry besides (None for requests without them).
    custom_id: str | None = None
    tokens: int | None = None
    prompt_tokens: int | None = None
    finish_reason: str | None = None
    created_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A prompt to submit with what came with it through the HTTP API: the batch line's
    custom_id and the parameters the model worker needs (workers.chat.RequestParams)."""

    prompt: str
    custom_id: str | None = None
    params: dict[str, Any] | None = None


def create_job(
    session: Session, tenant_id: int, prompts: Sequence[str | NewRequest], source: str
) -> tuple[str, list[int]]:
    """Store a job and its requests as queued; returns the job id and request ids by seq.

    `messplus submit` and the HTTP API both store jobs through create_job_in_batches (and
    then publish them with workers.publish.publish_route), so a job is stored the same way
    whoever sends it.
    """
    job_id, request_ids = create_job_in_batches(session, tenant_id, prompts, len(prompts), source)
    return job_id, list(request_ids)


def create_job_in_batches(
    session: Session,
    tenant_id: int,
    prompts: Iterable[str | NewRequest],
    n_requests: int,
    source: str,
    batch_size: int = 5_000,
) -> tuple[str, array[int]]:
    """Store a job of `n_requests` prompts, inserted `batch_size` at a time as `prompts`
    yields them; returns the job id and request ids by seq (8 bytes an id).

    Nothing is visible to anyone before the caller's transaction commits, so a job is
    never seen half stored however large. Raises InvalidValue, for the caller to roll back,
    when `prompts` yields another number of prompts than announced.
    """
    if n_requests < 1:
        raise InvalidValue("a job needs at least one prompt")
    get_tenant(session, tenant_id)
    job_id = uuid.uuid4().hex
    session.add(Job(id=job_id, tenant_id=tenant_id, source=source, n_requests=n_requests))
    session.flush()
    requests = (p if isinstance(p, NewRequest) else NewRequest(p) for p in prompts)
    if n_requests >= COPY_FROM and session.get_bind().dialect.name == "postgresql":
        request_ids = _copy_requests(session, job_id, tenant_id, requests)
    else:
        request_ids = array("q")
        batch: list[dict[str, object]] = []
        for seq, request in enumerate(requests):
            batch.append(
                {
                    "job_id": job_id,
                    "tenant_id": tenant_id,
                    "seq": seq,
                    "prompt": request.prompt,
                    "custom_id": request.custom_id,
                    "params": request.params,
                }
            )
            if len(batch) == batch_size:
                request_ids.extend(_insert_requests(session, batch))
                batch = []
        request_ids.extend(_insert_requests(session, batch))
    if len(request_ids) != n_requests:
        raise InvalidValue(f"expected {n_requests} prompts, got {len(request_ids)}")
    return job_id, request_ids


def _insert_requests(session: Session, rows: list[dict[str, object]]) -> Sequence[int]:
    if not rows:
        return []
    return session.scalars(
        insert(Request).returning(Request.id, sort_by_parameter_order=True), rows
    ).all()


def _copy_requests(
    session: Session, job_id: str, tenant_id: int, requests: Iterable[NewRequest]
) -> array[int]:
    """Insert a large job's requests with COPY (Postgres), streamed as `requests` yields
    them: 20,000 rows take about a quarter of the time of multi-row INSERTs. COPY applies no
    Python-side defaults, so every column with one is written here (status, attempts, the
    timestamps). The ids are read back by seq."""
    now = utcnow()
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    with (
        cursor,
        cursor.copy(
            "COPY requests (job_id, tenant_id, seq, prompt, custom_id, params, status, attempts, "
            "created_at, updated_at) FROM STDIN"
        ) as copy,
    ):
        for seq, request in enumerate(requests):
            params = None if request.params is None else json.dumps(request.params)
            copy.write_row(
                (job_id, tenant_id, seq, request.prompt, request.custom_id, params,
                 RequestStatus.QUEUED.value, 0, now, now)
            )  # fmt: skip
    ids = session.scalars(
        select(Request.id).where(Request.job_id == job_id).order_by(Request.seq)
    ).yield_per(10_000)
    return array("q", ids)


def job_progress(session: Session, job_id: str, tenant_id: int) -> JobProgress:
    require_job(session, job_id, tenant_id)
    counts = dict(
        session.execute(
            select(Request.status, func.count())
            .where(Request.job_id == job_id)
            .group_by(Request.status)
        ).all()
    )
    return JobProgress(**{status.value: counts.get(status.value, 0) for status in RequestStatus})


def job_results(session: Session, job_id: str, tenant_id: int) -> list[JobResult]:
    """Every request of the job in submission order, with the answer the user was served."""
    require_job(session, job_id, tenant_id)
    total_cost = (
        select(Response.request_id, func.sum(Response.cost).label("cost"))
        .join(Request, Request.id == Response.request_id)
        .where(Request.job_id == job_id)
        .group_by(Response.request_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Request.id,
            Request.seq,
            Request.prompt,
            Request.status,
            Request.failure_reason,
            ZooModel.name,
            Response.text,
            total_cost.c.cost,
            Request.custom_id,
            Response.tokens,
            Response.prompt_tokens,
            Response.finish_reason,
            Request.created_at,
        )
        .outerjoin(ZooModel, ZooModel.id == Request.served_model_id)
        .outerjoin(
            Response,
            (Response.request_id == Request.id) & (Response.model_id == Request.served_model_id),
        )
        .outerjoin(total_cost, total_cost.c.request_id == Request.id)
        .where(Request.job_id == job_id)
        .order_by(Request.seq)
    )
    return [JobResult(row[0], row[1], row[2], RequestStatus(row[3]), *row[4:]) for row in rows]


def require_job(session: Session, job_id: str, tenant_id: int) -> None:
    """Raise UnknownJob unless the job exists and belongs to the tenant (no existence leak)."""
    found = session.scalar(select(Job.id).where(Job.id == job_id, Job.tenant_id == tenant_id))
    if found is None:
        raise UnknownJob(job_id)


def find_requests(
    session: Session,
    tenant_id: int,
    *,
    by_seq: Sequence[tuple[str, int]] = (),
    by_custom_id: Sequence[tuple[str, str]] = (),
) -> dict[tuple[str, int | str], int]:
    """Request ids of the tenant's requests named by (job, seq) or (job, custom_id), keyed
    by the name as given.

    Names that find nothing (another tenant's job included) are simply absent, so callers
    answer them exactly as ids that never existed."""
    found: dict[tuple[str, int | str], int] = {}
    for key, names in ((Request.seq, by_seq), (Request.custom_id, by_custom_id)):
        wanted = sorted(set(names))
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            rows = session.execute(
                select(Request.job_id, key, Request.id).where(
                    Request.tenant_id == tenant_id,
                    tuple_(Request.job_id, key).in_(wanted[start : start + _LOOKUP_CHUNK]),
                )
            )
            for job_id, name, request_id in rows:
                if name is not None:
                    found[job_id, name] = request_id
    return found
