"""The model workers' writes: store answers once, then finish or fail their requests.

Answers are keyed by (request, model) and inserted with ON CONFLICT DO NOTHING, so a
redelivered inference message stores nothing new and the caller, told which rows were
new, charges each answer's cost exactly once. Status moves are conditional UPDATEs: a
request in a final state (done, failed) never changes again.

On Postgres, every transaction that finishes requests also sends a notification on
JOB_FINAL_CHANNEL naming each of their jobs (delivered on commit, so a listener never sees
a request final before it is): the HTTP API wakes the caller waiting on a chat request at
once instead of polling the database for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from db._dialect import upsert_insert
from db._paging import stream
from db.models import Request, RequestStatus, Response, RoutingDecision, ZooModel
from db.sla import apply_sla_update
from db.sla_calibration import add_served

__all__ = [
    "JOB_FINAL_CHANNEL",
    "AnswerCost",
    "ModelAnswer",
    "iter_answer_costs",
    "mark_done",
    "mark_failed",
    "record_responses",
]

_UNFINISHED = (RequestStatus.QUEUED.value, RequestStatus.ROUTED.value)
JOB_FINAL_CHANNEL = "messplus_job_final"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelAnswer:
    """One model's answer to one request, as a model worker produced it."""

    request_id: int
    model_id: int
    text: str
    tokens: int
    latency_s: float
    cost: float
    would_satisfy: bool | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None


def record_responses(session: Session, answers: Sequence[ModelAnswer]) -> set[tuple[int, int]]:
    """Store answers not stored yet; returns the (request_id, model_id) pairs inserted now."""
    if not answers:
        return set()
    inserted = session.execute(
        upsert_insert(session, Response)
        .on_conflict_do_nothing(index_elements=[Response.request_id, Response.model_id])
        .returning(Response.request_id, Response.model_id),
        [asdict(answer) for answer in answers],
    )
    return {(request_id, model_id) for request_id, model_id in inserted}


@dataclass(frozen=True, slots=True)
class AnswerCost:
    """What one model charged for its answer to one prompt: a cost model's example."""

    request_id: int
    prompt: str
    model_position: int
    cost: float


def iter_answer_costs(
    session: Session, limit: int, batch_size: int = 10_000
) -> Iterator[list[AnswerCost]]:
    """The newest `limit` answers' costs, newest request first, in batches of at most
    `batch_size` (streamed: db._paging.stream). Every answer has a cost,
    rated or not, so this is the whole traffic the router served, not only the rated part."""
    query = (
        select(Response.request_id, Request.prompt, ZooModel.position, Response.cost)
        .join(Request, Request.id == Response.request_id)
        .join(ZooModel, ZooModel.id == Response.model_id)
        .order_by(Response.request_id.desc(), Response.model_id)
        .limit(limit)
    )
    for partition in stream(session, query, batch_size):
        yield [AnswerCost(*row) for row in partition]


def mark_done(session: Session, request_ids: Sequence[int]) -> list[int]:
    """Finish routed requests whose served model's answer is stored; returns those finished.

    Requiring the served answer lets every model worker call this after storing its
    answers, explored or not: only the answer the user is served completes a request.
    """
    if not request_ids:
        return []
    served_answer = exists().where(
        Response.request_id == Request.id, Response.model_id == Request.served_model_id
    )
    done = session.execute(
        update(Request)
        .where(
            Request.id.in_(request_ids),
            Request.status == RequestStatus.ROUTED.value,
            served_answer,
        )
        .values(status=RequestStatus.DONE.value)
        .returning(Request.id, Request.job_id)
    ).all()
    _notify_final(session, {job_id for _, job_id in done})
    return sorted(request_id for request_id, _ in done)


def mark_failed(session: Session, request_ids: Sequence[int], reason: str) -> list[int]:
    """Fail requests not yet finished (queued or routed); returns those failed now.

    Queued requests may fail too (a router that can never route them), so that every
    request reaches a final state. A routed request that fails leaves its tenant's SLA
    estimate (see _withdraw_from_sla).
    """
    if not request_ids:
        return []
    rows = session.execute(
        update(Request)
        .where(Request.id.in_(request_ids), Request.status.in_(_UNFINISHED))
        .values(status=RequestStatus.FAILED.value, failure_reason=reason)
        .returning(Request.id, Request.job_id)
    ).all()
    failed = [request_id for request_id, _ in rows]
    _withdraw_from_sla(session, failed)
    _notify_final(session, {job_id for _, job_id in rows})
    return sorted(failed)


def _notify_final(session: Session, job_ids: set[str]) -> None:
    """Tell listeners (the HTTP API) which jobs gained final requests; Postgres only.

    One notification per job: Postgres folds repeats within a transaction, and a job id
    (32 characters) keeps every payload far below its 8,000-byte limit.
    """
    if not job_ids or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(select(*(func.pg_notify(JOB_FINAL_CHANNEL, j) for j in sorted(job_ids))))


def _withdraw_from_sla(session: Session, request_ids: Sequence[int]) -> None:
    """Take failed requests out of the pending debt and the unrated answers.

    The satisfaction SLA is about the answers users get; a request with no answer is an
    availability failure, counted and reported as such. Counting it as an unsatisfied
    answer instead would make the router buy the largest model for thousands of requests
    after a Triton outage, to repay users who were never served at all.
    """
    if not request_ids:
        return
    rows = session.execute(
        select(
            RoutingDecision.tenant_id,
            RoutingDecision.chosen_model_id,
            RoutingDecision.predicted_satisfaction,
            RoutingDecision.expected_debt,
        ).where(RoutingDecision.request_id.in_(request_ids))
    ).all()
    pending: dict[int, float] = defaultdict(float)
    withdrawn: dict[int, dict[int, tuple[int, float]]] = defaultdict(dict)
    for tenant_id, model_id, predicted, expected_debt in rows:
        pending[tenant_id] += expected_debt
        count, total = withdrawn[tenant_id].get(model_id, (0, 0.0))
        withdrawn[tenant_id][model_id] = (count - 1, total - predicted)
    for tenant_id in sorted(pending):  # SLA row, then calibration rows: one lock order
        apply_sla_update(session, tenant_id, pending_debt=-pending[tenant_id])
        add_served(session, tenant_id, withdrawn[tenant_id])
