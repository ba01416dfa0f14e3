"""Messages no task can process become dead letters, whatever stage they fail at.

Celery acknowledges a message and keeps only a log line when it cannot decode it (not
JSON, or a serializer it does not accept, such as pickle), does not know its task name, or
finds some envelope fields malformed; and, with late acknowledgement, when the task itself
raises. The message is then gone, and the log line carries its body: whatever the sender
put in it, prompts included. Other malformed envelopes (a body that is not
`[args, kwargs, embed]`, a header of the wrong type, no `id`) make Celery's consumer raise
and the worker exit or reconnect forever, with the message back at the head of the queue.
Here every message is checked first (workers.envelope), every one that fails is stored in
the dead-letter table with the reason, the log says only which queue and what kind of
failure, and the worker goes on consuming.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from celery.worker.consumer import Consumer
from kombu.exceptions import ContentDisallowed, OperationalError
from kombu.message import Message
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import SQLAlchemyError
from vine import promise

from db.dead_letters import record_dead_letter
from workers import runtime
from workers.envelope import envelope_problem

__all__ = ["DeadLetterOnFailure", "DeadLetteringConsumer", "dead_letter"]

log = logging.getLogger(__name__)

# What publishing raises while the broker is down or restarting.
_BROKER_DOWN = (OperationalError, RedisConnectionError, ConnectionError)


def dead_letter(queue: str, payload: object, reason: str, kind: str) -> None:
    """Store the message with `reason`; log its id and `kind`, a fixed phrase.

    Reasons may quote the message (an unknown model's name, a key, an exception's text),
    so they stay in the table with it. If the database cannot take it either, the log line
    is all that is left of the message; raising here would only get a poison message
    redelivered forever.
    """
    text = payload if isinstance(payload, str) else json.dumps(payload, default=repr)
    try:
        with runtime.sessions().begin() as session:
            letter_id = record_dead_letter(session, queue, text, reason)
    except SQLAlchemyError as exc:
        log.error("dead letter on %s (%s) not stored: %s", queue, kind, type(exc).__name__)
        return
    log.warning("dead letter %d on %s: %s", letter_id, queue, kind)


def _queue_of(message: Message) -> str:
    return str(message.delivery_info.get("routing_key") or "unknown")


def _body_text(message: Message) -> str:
    body = message.body
    return body.decode("utf-8", "backslashreplace") if isinstance(body, bytes) else str(body)


class DeadLetteringConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, with every message it would discard kept as a dead letter.

    Set as `worker_consumer` in workers.celeryconfig.
    """

    def _reject(self, message: Message, reason: str, kind: str) -> None:
        task = message.headers.get("task") if isinstance(message.headers, dict) else None
        if task is not None:
            reason = f"task {task!r}: {reason}"
        dead_letter(_queue_of(message), _body_text(message), reason, kind)
        message.ack_log_error(log, self.connection_errors)

    def create_task_handler(self, promise: type[promise] = promise) -> Callable[[Message], None]:
        """Celery's handler of each message, behind a check of its envelope.

        A message Celery would choke on is dead-lettered before Celery reads it. Should
        Celery's handler raise all the same, on a kind of message no check foresaw, the
        message becomes a dead letter too: only a lost connection may stop the consumer.
        """
        handle = super().create_task_handler(promise)

        def on_task_received(message: Message) -> None:
            headers = message.headers
            if not isinstance(headers, dict) or "task" not in headers:
                return self.on_unknown_message(None, message)
            try:
                body = message.decode()
            except ContentDisallowed as exc:
                return self.on_invalid_task(None, message, exc)
            except Exception as exc:
                return self.on_decode_error(message, exc)
            if (problem := envelope_problem(headers, body)) is not None:
                return self._reject(message, f"malformed envelope: {problem}", "malformed envelope")
            try:
                handle(message)
            except self.connection_errors:
                raise
            except Exception as exc:
                if not message.acknowledged:
                    self._reject(
                        message,
                        f"the worker could not take the message: {type(exc).__name__}: {exc}",
                        f"message refused ({type(exc).__name__})",
                    )
            return None

        return on_task_received

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        self._reject(
            message,
            f"cannot decode the body ({message.content_type}): {exc}",
            f"undecodable body ({type(exc).__name__})",
        )

    def on_unknown_message(self, body: Any, message: Message) -> None:
        self._reject(message, "not a task message (no task name)", "not a task message")

    def on_unknown_task(self, body: Any, message: Message, exc: Exception) -> None:
        self._reject(message, "no such task", "unknown task")

    def on_invalid_task(self, body: Any, message: Message, exc: Exception) -> None:
        self._reject(
            message, f"invalid task message: {exc}", f"invalid task message ({type(exc).__name__})"
        )


class DeadLetterOnFailure(Task):  # type: ignore[misc]
    """A task whose message is kept as a dead letter when it fails for good.

    Tasks are acknowledged late, so a failed message is acknowledged and would otherwise be
    gone: arguments the task cannot take, or an error no retry can cure.
    """

    def delivered_from(self) -> str:
        """The queue the current message came from (the task's name when run directly)."""
        delivery = self.request.delivery_info or {}
        return str(delivery.get("routing_key") or self.name)

    def on_failure(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: object,
    ) -> None:
        if isinstance(exc, _BROKER_DOWN):
            # The stage committed, then could not publish the next one: Postgres knows the
            # requests are stuck, and the reconciler publishes them again. Not a dead letter.
            log.warning("%s could not reach the broker (%s)", self.name, type(exc).__name__)
            return
        dead_letter(
            self.delivered_from(),
            {"task": self.name, "args": list(args), "kwargs": kwargs},
            f"{type(exc).__name__}: {exc}",
            f"{self.name} failed ({type(exc).__name__})",
        )
