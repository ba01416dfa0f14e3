"""What a task message must look like before Celery's worker is handed it.

Celery trusts the envelope of a message (its headers and the `[args, kwargs, embed]` body
of message protocol 2): a body that is an object, a string or a list of the wrong length,
a `timelimit` header that is a string, a `task` or `id` header of the wrong type raise
inside the consumer, outside every handler that acknowledges bad messages, and the worker
either exits ("Unrecoverable error"; the message goes back to the head of the queue and
kills every worker that takes it next) or reconnects forever on a missing `id`. Other
headers and the body's `embed` are read later as task options: a forged `stamps` header
or an `embed` naming a chain would make the task publish messages of the sender's choosing
when it retries or finishes.

`envelope_problem` checks every header Celery's protocol 2 defines and the body's shape,
and names the first problem; the consumer (workers.dead_letters) dead-letters such a
message before Celery reads it. messplus sends protocol 2 only, never links, chains or
stamps tasks, and sets no custom headers, so anything else is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

__all__ = ["envelope_problem"]

MAX_ID_CHARS = 200
# The links Celery carries in the body's third element; messplus tasks have none.
_EMBED_KEYS = frozenset({"callbacks", "errbacks", "chain", "chord"})


def _text(value: object) -> bool:
    return isinstance(value, str)


def _optional_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _optional_count(value: object) -> bool:
    return value is None or _count(value)


def _seconds(value: object) -> bool:
    return value is None or (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _time_limits(value: object) -> bool:
    """[hard, soft], each seconds or null, as Celery sends it (or null for none)."""
    return value is None or (
        isinstance(value, list | tuple) and len(value) == 2 and all(map(_seconds, value))
    )


def _optional_bool(value: object) -> bool:
    return value is None or isinstance(value, bool)


def _no_stamped_headers(value: object) -> bool:
    return value is None or value == []


def _no_stamps(value: object) -> bool:
    return value is None or value == {}


# Every header of Celery's message protocol 2, with the values messplus accepts and what
# the refusal says. `eta` and `expires` are parsed by Celery, which refuses bad ones itself.
_HEADERS: Mapping[str, tuple[Callable[[object], bool], str]] = {
    "lang": (_optional_text, "a string"),
    "task": (_text, "a string"),
    "id": (_text, "a string"),
    "shadow": (_optional_text, "a string or null"),
    "eta": (_optional_text, "an ISO 8601 time or null"),
    "expires": (_optional_text, "an ISO 8601 time or null"),
    "group": (_optional_text, "a string or null"),
    "group_index": (_optional_count, "a count or null"),
    "retries": (_count, "a count"),
    "timelimit": (_time_limits, "[hard, soft] in seconds (each a number or null) or null"),
    "root_id": (_optional_text, "a string or null"),
    "parent_id": (_optional_text, "a string or null"),
    "argsrepr": (_optional_text, "a string or null"),
    "kwargsrepr": (_optional_text, "a string or null"),
    "origin": (_optional_text, "a string or null"),
    "ignore_result": (_optional_bool, "true, false or null"),
    "replaced_task_nesting": (_optional_count, "a count or null"),
    "stamped_headers": (_no_stamped_headers, "empty: messplus does not stamp tasks"),
    "stamps": (_no_stamps, "empty: messplus does not stamp tasks"),
}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "an array" if isinstance(value, list | tuple) else "an object"
    )


def _header_problem(headers: Mapping[str, object]) -> str | None:
    if unknown := sorted(set(headers) - set(_HEADERS), key=str):
        return f"unknown header(s) {', '.join(map(repr, unknown))}"
    for name in ("task", "id"):
        if name not in headers:
            return f"no {name!r} header"
    identifier = headers["id"]
    if isinstance(identifier, str) and not 0 < len(identifier) <= MAX_ID_CHARS:
        return f"the 'id' header must be 1 to {MAX_ID_CHARS} characters"
    for name, value in headers.items():
        valid, expected = _HEADERS[name]
        if not valid(value):
            return f"the {name!r} header must be {expected}, got {_json_type(value)}"
    return None


def _body_problem(body: object) -> str | None:
    if not isinstance(body, list | tuple) or len(body) != 3:
        shape = f"{len(body)} elements" if isinstance(body, list | tuple) else _json_type(body)
        return f"the body must be [args, kwargs, embed], got {shape}"
    args, kwargs, embed = body
    if not isinstance(args, list | tuple):
        return f"args must be an array, got {_json_type(args)}"
    if not isinstance(kwargs, Mapping):
        return f"kwargs must be an object, got {_json_type(kwargs)}"
    if not isinstance(embed, Mapping):
        return f"embed must be an object, got {_json_type(embed)}"
    if unknown := sorted(set(embed) - _EMBED_KEYS, key=str):
        return f"unknown key(s) in embed {', '.join(map(repr, unknown))}"
    if linked := sorted(key for key, value in embed.items() if value is not None):
        return f"embed links {', '.join(linked)}: messplus tasks are never linked"
    return None


def envelope_problem(headers: object, body: object) -> str | None:
    """What is wrong with a protocol 2 task message (its headers and decoded body), or None.

    The first problem found is named; the message's content is never quoted, so the reason
    can go into a log line.
    """
    if not isinstance(headers, Mapping):
        return f"the headers must be an object, got {_json_type(headers)}"
    return _header_problem(headers) or _body_problem(body)
