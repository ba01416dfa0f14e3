"""Worker health: each worker answers a remote-control command with the queues it consumes
and what keeps it from doing its work, and clients ask every worker at once.

Celery's `inspect ping` only proves a worker answers the broker. A model worker whose
Triton no longer serves its model answers pings too, while every chunk it takes fails
after minutes of retries; its health names the problem instead. The same answers tell a
client whether any worker consumes a queue at all (`messplus submit --wait`).

A worker busy with a task in a solo pool answers after that task: a client waiting less
long sees it as silent, so "no answer" means "none answered in time", not "none exists".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery.worker.control import inspect_command

from workers import queues

__all__ = [
    "HEALTH_COMMAND",
    "WorkerHealth",
    "ask_workers",
    "consumers",
    "messplus_health",
    "waiting_messages",
]

HEALTH_COMMAND = "messplus_health"
TRITON_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class WorkerHealth:
    """One worker's answer: its node name, its queues, and its problems (none: healthy)."""

    node: str
    queues: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return not self.problems


@inspect_command()  # type: ignore[misc]
def messplus_health(state: Any) -> dict[str, list[str]]:
    """The queues this worker consumes and what keeps it from serving them."""
    consumer = state.consumer.task_consumer
    consumed = sorted(queue.name for queue in consumer.queues) if consumer else []
    problems = [
        problem
        for queue in consumed
        if queue.startswith(queues.MODEL_PREFIX)
        for problem in _model_problems(queue.removeprefix(queues.MODEL_PREFIX))
    ]
    return {"queues": consumed, "problems": problems}


def _model_problems(model: str) -> list[str]:
    """Whether Triton serves the model as workers call it, asked now."""
    from db.zoo import get_model_by_name
    from workers import runtime
    from workers.triton_client import serving_problems

    try:
        with runtime.sessions().begin() as session:
            triton_name = get_model_by_name(session, model).triton_model_name
        url = runtime.settings().triton_url
        return serving_problems(url, [triton_name], timeout_s=TRITON_TIMEOUT_S)
    except Exception as exc:  # a health answer reports trouble, it never raises it
        return [f"cannot check model {model}: {type(exc).__name__}: {exc}"]


def ask_workers(timeout_s: float) -> list[WorkerHealth]:
    """Every worker's health that arrives within `timeout_s`, by node name."""
    from workers.app import app

    replies = app.control.broadcast(HEALTH_COMMAND, reply=True, timeout=timeout_s)
    found = []
    for reply in replies:
        for node, body in reply.items():
            if not isinstance(body, dict) or "queues" not in body:  # not a messplus worker
                continue
            found.append(WorkerHealth(node, tuple(body["queues"]), tuple(body["problems"])))
    return sorted(found, key=lambda health: health.node)


def consumers(workers: Sequence[WorkerHealth], queue: str) -> list[WorkerHealth]:
    """The workers among `workers` that consume `queue`."""
    return [worker for worker in workers if queue in worker.queues]


def waiting_messages(queue: str) -> int:
    """Messages waiting in `queue` on the broker; 0 for a queue nothing was sent to yet."""
    from kombu.exceptions import ChannelError

    from workers.app import app

    with app.connection_for_read() as connection:
        try:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
        except ChannelError:  # a passive declare of a queue the broker does not know
            return 0
    return int(declared.message_count)
