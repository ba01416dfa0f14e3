"""The Celery tasks: parse the message, call the stage's plain function, publish, return.

Every task is idempotent (see workers.routing, workers.inference, workers.feedback), so
all are acknowledged late and redelivered if their worker dies. Transient database errors
are retried with backoff; Triton being unavailable is retried a bounded number of times
and then fails the requests with the reason; a message that can never be processed goes
to the dead-letter table and is acknowledged, so the worker keeps consuming.

Retraining is idempotent too: a redelivered run trains the same candidate from the same
ratings, which is then no better than the version the first run activated, and is rejected.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from celery import Task
from celery.signals import (
    setup_logging,
    task_retry,
    worker_init,
    worker_process_shutdown,
    worker_shutdown,
)
from sqlalchemy.exc import OperationalError

from db.errors import UnknownModel
from workers import metrics, runtime
from workers.app import app
from workers.backoff import retry_delay_s
from workers.dead_letters import DeadLetterOnFailure, dead_letter
from workers.errors import InferenceError, InferenceUnavailable
from workers.feedback import apply_ratings
from workers.inference import answer_chunk, fail_served
from workers.logs import configure_logging
from workers.messages import FeedbackChunk, InferChunk, MessageError, RouteChunk, TrainRequest
from workers.publish import publish_infer
from workers.reconciler import reconcile as reconcile_stuck
from workers.routing import route_chunk
from workers.training import retrain

__all__ = ["feedback", "infer", "reconcile", "route", "train"]

log = logging.getLogger(__name__)

_TRANSIENT_DB = {
    "base": DeadLetterOnFailure,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 30,
    "max_retries": 20,
}


@app.task(name="messplus.route", **_TRANSIENT_DB)
def route(payload: Any) -> int:
    """Decide a chunk of requests and send each to its model queue(s)."""
    try:
        chunk = RouteChunk.parse(payload)
    except MessageError as exc:
        dead_letter("route", payload, str(exc), "payload refused")
        return 0
    publish = route_chunk(
        runtime.sessions(), chunk.request_ids, runtime.rng(), runtime.predictor_cache()
    )
    log.info(
        "routed %d requests",
        sum(len(ids) for ids in publish.values()),
        extra={"stage": "route", "request_ids": list(chunk.request_ids), "to": sorted(publish)},
    )
    size = runtime.settings().chunk_size
    return sum(publish_infer(model, ids, size) for model, ids in publish.items())


@app.task(name="messplus.infer", bind=True, **_TRANSIENT_DB)
def infer(self: DeadLetterOnFailure, payload: Any) -> int:
    """Answer a chunk with one model; bounded retries while Triton is unavailable."""
    try:
        chunk = InferChunk.parse(payload)
    except MessageError as exc:
        dead_letter(self.delivered_from(), payload, str(exc), "payload refused")
        return 0
    settings = runtime.settings()
    try:
        outcome = answer_chunk(
            runtime.sessions(),
            runtime.inference_client(),
            chunk.model,
            chunk.request_ids,
            settings.max_tokens,
        )
    except InferenceUnavailable as exc:
        if self.request.retries < settings.infer_retries:
            countdown = retry_delay_s(
                self.request.retries,
                settings.infer_backoff_s,
                settings.infer_backoff_max_s,
                random.random(),
            )
            raise self.retry(exc=exc, countdown=countdown) from exc
        fail_served(runtime.sessions(), chunk.model, chunk.request_ids, exc)
        return 0
    except InferenceError as exc:
        fail_served(runtime.sessions(), chunk.model, chunk.request_ids, exc)
        return 0
    except UnknownModel as exc:  # the message's fault: no worker can ever answer it
        dead_letter(self.delivered_from(), payload, str(exc), "unknown model")
        return 0
    log.info(
        "answered %d, %d done",
        outcome.answered,
        outcome.done,
        extra={"stage": "infer", "model": chunk.model, "request_ids": list(chunk.request_ids)},
    )
    return outcome.done


@app.task(name="messplus.feedback", **_TRANSIENT_DB)
def feedback(payload: Any) -> int:
    """Apply pending ratings; each one that names no answer becomes a dead letter."""
    try:
        chunk = FeedbackChunk.parse(payload)
    except MessageError as exc:
        dead_letter("feedback", payload, str(exc), "payload refused")
        return 0
    summary = apply_ratings(runtime.sessions(), chunk.rating_ids)
    for rating, reason in summary.refused:
        dead_letter("feedback", rating, reason, "rating refused")
    return summary.new + summary.changed


@app.task(name="messplus.train", **_TRANSIENT_DB)
def train(payload: Any) -> dict[str, Any]:
    """Retrain the predictor from all feedback; publish it only if it is better."""
    try:
        request = TrainRequest.parse(payload)
    except MessageError as exc:
        dead_letter("train", payload, str(exc), "payload refused")
        return {}
    report = retrain(runtime.sessions(), dry_run=request.dry_run)
    log.info(
        "retrain: %s (%s), published version %s",
        "accepted" if report.accepted else "rejected",
        report.reason,
        report.published_version_id,
    )
    return report.to_json()


@app.task(name="messplus.reconcile", **_TRANSIENT_DB)
def reconcile() -> int:
    """Re-publish requests that stopped moving; idempotent stages make this always safe."""
    settings = runtime.settings()
    report = reconcile_stuck(runtime.sessions(), settings.stuck_after_s, settings.chunk_size)
    if report.total:
        log.warning("reconciler re-published %d stuck requests", report.total)
    return report.total


@setup_logging.connect
def _logging(loglevel: int | str | None = None, **_: object) -> None:
    """Workers log through workers.logs (JSON lines with MESSPLUS_LOG_JSON), not Celery's."""
    configure_logging(runtime.settings().log_json, loglevel or logging.INFO)


@worker_init.connect
def _metrics(**_: object) -> None:
    """Count into MESSPLUS_METRICS_DIR from the start; prefork children inherit it."""
    directory = runtime.settings().metrics_dir
    metrics.record_to(None if directory is None else Path(directory))


@task_retry.connect
def _count_retry(sender: Task | None = None, reason: object = None, **_: object) -> None:
    # `reason` is Celery's Retry, wrapping what the task retried on.
    retried_on = getattr(reason, "exc", None)
    metrics.current().task_retried(getattr(sender, "name", "unknown"), retried_on)


@worker_process_shutdown.connect
@worker_shutdown.connect
def _release(**_: object) -> None:
    metrics.current().close()
    runtime.close()
