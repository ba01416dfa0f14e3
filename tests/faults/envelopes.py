"""Issue 12's malformed task envelopes, and publishing a message byte for byte with kombu.

Each kind once stopped a whole stage: Celery's consumer raised on it, the worker exited (or,
without an `id` header, reconnected forever) and the message went back to the head of the
queue for the next worker. tests/faults/test_poison_envelopes.py publishes every kind to
every queue at once; the bad-input table (test_bad_inputs.py) tries each one by one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MALFORMED", "Envelope", "fill", "publish_raw", "task_headers"]


@dataclass(frozen=True)
class Envelope:
    """A task message whose envelope is wrong: `body` is the message body as JSON text,
    with $arg standing for a good argument of the queue's task; `headers` (JSON, $task
    standing for the task's name) change the headers Celery would send, null removing one;
    `says` is what the dead letter's reason must say."""

    kind: str
    body: str
    headers: str = "{}"
    says: str = "malformed envelope"


_GOOD = '[[$arg], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'

MALFORMED: tuple[Envelope, ...] = (
    Envelope("a body that is an object", '{"not": "a list"}',
             says="the body must be [args, kwargs, embed], got an object"),
    Envelope("a body that is []", "[]", says="the body must be [args, kwargs, embed], got 0"),
    Envelope("a body of two elements", "[[$arg], {}]",
             says="the body must be [args, kwargs, embed], got 2"),
    Envelope("a body that is a string", '"[[], {}, {}]"', says="got a string"),
    Envelope("a body that is a number", "42", says="got a number"),
    Envelope("a body that is null", "null", says="got null"),
    Envelope("an embed that is not an object", '[[$arg], {}, "chain"]',
             says="embed must be an object, got a string"),
    Envelope("a timelimit header that is a string", _GOOD, '{"timelimit": "600"}',
             says="the 'timelimit' header must be [hard, soft]"),
    Envelope("a task header that is a list", _GOOD, '{"task": ["$task"]}',
             says="the 'task' header must be a string, got an array"),
    Envelope("no id header", _GOOD, '{"id": null}', says="no 'id' header"),
)  # fmt: skip


def task_headers(task: str, overrides: Mapping[str, object]) -> dict[str, object]:
    """The headers Celery sends with a task (protocol 2), with `overrides` applied: a value
    of None removes that header."""
    task_id = str(uuid.uuid4())
    headers: dict[str, object] = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "",
        "kwargsrepr": "",
        "origin": "tests",
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    for name, value in overrides.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


def fill(envelope: Envelope, task: str, argument: object) -> tuple[bytes, dict[str, object]]:
    """The body bytes and headers of `envelope` for the queue whose task is `task`."""
    body = envelope.body.replace("$arg", json.dumps(argument))
    overrides = json.loads(envelope.headers.replace("$task", task))
    return body.encode("utf-8"), task_headers(task, overrides)


def publish_raw(
    queue: str,
    body: bytes,
    headers: Mapping[str, object],
    content_type: str = "application/json",
    content_encoding: str = "utf-8",
) -> None:
    """Put exactly these bytes and headers on `queue`, as any client of the broker could."""
    from kombu import Exchange, Queue

    from workers.app import app

    exchange = Exchange(queue, type="direct")
    with app.connection_for_write() as connection:
        connection.Producer().publish(
            body,
            exchange=exchange,
            routing_key=queue,
            declare=[Queue(queue, exchange, routing_key=queue)],
            content_type=content_type,
            content_encoding=content_encoding,
            headers=dict(headers),
        )
