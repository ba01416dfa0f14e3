"""A Celery app with one no-op task on the same broker: the floor a pipeline stage is
measured against. The task only records its own message latency in Redis."""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

__all__ = ["app", "noop"]

app = Celery("messplus-bench-noop", broker=os.environ.get("MESSPLUS_BROKER_URL"))
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)
_client: redis.Redis | None = None


@app.task(name="bench.noop")
def noop(sent_at: float, key: str) -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(app.conf.broker_url)
    _client.rpush(key, time.time() - sent_at)
