"""Batches of the HTTP API: a job made from an uploaded file, plus its OpenAI fields.

A batch *is* a job (its id is the job's, so `messplus status` and `messplus results` work
on it too); the batches row adds the input file, endpoint, window, metadata and a
cancellation. Status and counts are read from the job's requests every time, never
stored: Postgres has one truth, and a batch read straight after its last answer is stored
already says so. Like jobs, a batch is reachable only through its tenant.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db._paging import newest_first
from db.errors import UnknownBatch
from db.inference import mark_failed
from db.jobs import JobProgress, NewRequest, create_job
from db.models import Batch, Request, RequestStatus, utcnow

__all__ = [
    "CANCELLED_REASON",
    "BatchView",
    "cancel_batch",
    "create_batch",
    "get_batch",
    "list_batches",
]

# The failure reason of a request a cancellation kept from being served.
CANCELLED_REASON = "cancelled: the batch was cancelled before this request was routed"


@dataclass(frozen=True, slots=True)
class BatchView:
    """A batch as the API shows it: its fields, its requests' progress, when it finished."""

    batch: Batch
    progress: JobProgress
    finished_at: dt.datetime | None


def create_batch(
    session: Session,
    tenant_id: int,
    *,
    input_file_id: str,
    endpoint: str,
    completion_window: str,
    metadata: dict[str, Any] | None,
    requests: Sequence[NewRequest],
    source: str,
) -> tuple[str, list[int]]:
    """Store the job, its requests (queued) and the batch row; returns the job's ids."""
    job_id, request_ids = create_job(session, tenant_id, requests, source)
    session.add(
        Batch(
            job_id=job_id,
            tenant_id=tenant_id,
            input_file_id=input_file_id,
            endpoint=endpoint,
            completion_window=completion_window,
            metadata_json=metadata,
        )
    )
    session.flush()
    return job_id, request_ids


def _views(session: Session, batches: Sequence[Batch]) -> list[BatchView]:
    """Progress of every batch in one grouped query, and when the finished ones finished."""
    job_ids = [b.job_id for b in batches]
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    last_update: dict[str, dt.datetime] = {}
    for job_id, status, count, updated in session.execute(
        select(Request.job_id, Request.status, func.count(), func.max(Request.updated_at))
        .where(Request.job_id.in_(job_ids))
        .group_by(Request.job_id, Request.status)
    ):
        counts[job_id][status] = count
        last_update[job_id] = max(last_update.get(job_id, updated), updated)
    views = []
    for batch in batches:
        progress = JobProgress(
            **{s.value: counts[batch.job_id].get(s.value, 0) for s in RequestStatus}
        )
        finished = last_update.get(batch.job_id) if progress.finished else None
        if finished is not None and finished.tzinfo is None:  # SQLite's max() drops the type
            finished = finished.replace(tzinfo=dt.UTC)
        views.append(BatchView(batch, progress, finished))
    return views


def _batch(session: Session, job_id: str, tenant_id: int, *, lock: bool = False) -> Batch:
    query = select(Batch).where(Batch.job_id == job_id, Batch.tenant_id == tenant_id)
    batch = session.scalar(query.with_for_update() if lock else query)
    if batch is None:
        raise UnknownBatch(job_id)
    return batch


def get_batch(session: Session, job_id: str, tenant_id: int) -> BatchView:
    (view,) = _views(session, [_batch(session, job_id, tenant_id)])
    return view


def list_batches(
    session: Session, tenant_id: int, *, limit: int, after: str | None = None
) -> tuple[list[BatchView], bool]:
    """The tenant's batches, newest first, from just after the batch `after`; and has_more."""
    cursor = None
    if after is not None:
        batch = _batch(session, after, tenant_id)
        cursor = (batch.created_at, batch.job_id)
    query = select(Batch).where(Batch.tenant_id == tenant_id)
    rows, has_more = newest_first(
        session, query, Batch.created_at, Batch.job_id, after=cursor, limit=limit
    )
    return _views(session, rows), has_more


def cancel_batch(session: Session, job_id: str, tenant_id: int) -> BatchView | None:
    """Cancel: requests still queued fail (the router never claims them), routed ones
    finish. Returns the view after cancelling, or None if it was cancelled before or had
    finished already (the view is then unchanged; read it with get_batch)."""
    batch = _batch(session, job_id, tenant_id, lock=True)
    if batch.cancelling_at is not None or get_batch(session, job_id, tenant_id).progress.finished:
        return None
    session.execute(update(Batch).where(Batch.job_id == job_id).values(cancelling_at=utcnow()))
    queued = session.scalars(
        select(Request.id).where(
            Request.job_id == job_id, Request.status == RequestStatus.QUEUED.value
        )
    ).all()
    mark_failed(session, list(queued), CANCELLED_REASON)
    session.expire(batch)
    return get_batch(session, job_id, tenant_id)
