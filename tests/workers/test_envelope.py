"""The envelope check passes every message Celery itself sends and names what is wrong
with the rest (issue 12.1; the end-to-end proof is tests/faults/test_poison_envelopes.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.faults.envelopes import MALFORMED, fill
from workers.app import app
from workers.envelope import envelope_problem


def _sent_by_celery(**options: Any) -> tuple[dict[str, Any], Any]:
    """Headers and decoded body of a message as Celery's own client builds it."""
    message = app.amqp.as_task_v2(
        "4f1c", "messplus.route", args=[{"request_ids": [1]}], kwargs={}, **options
    )
    return dict(message.headers), json.loads(json.dumps(message.body))


@pytest.mark.parametrize(
    "options",
    [{}, {"countdown": 5}, {"expires": 60}, {"retries": 3}, {"time_limit": 600.0}],
    ids=["plain", "countdown", "expires", "retried", "time limit"],
)
def test_what_celery_sends_passes(options: dict[str, Any]) -> None:
    assert envelope_problem(*_sent_by_celery(**options)) is None


@pytest.mark.parametrize("envelope", MALFORMED, ids=[e.kind for e in MALFORMED])
def test_each_malformed_kind_of_the_issue_is_named(envelope: Any) -> None:
    body, headers = fill(envelope, "messplus.route", {"request_ids": [1]})
    problem = envelope_problem(headers, json.loads(body))
    assert problem is not None and envelope.says in problem


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"shadow": [1]}, "the 'shadow' header must be a string or null, got an array"),
        ({"id": [1]}, "the 'id' header must be a string, got an array"),
        ({"id": ""}, "the 'id' header must be 1 to 200 characters"),
        ({"timelimit": [1, 2, 3]}, "the 'timelimit' header must be [hard, soft]"),
        ({"timelimit": ["a", "b"]}, "the 'timelimit' header must be [hard, soft]"),
        ({"retries": "3"}, "the 'retries' header must be a count, got a string"),
        ({"retries": True}, "the 'retries' header must be a count, got a boolean"),
        ({"stamped_headers": ["queue"], "stamps": {"queue": "train"}}, "does not stamp"),
        ({"headers": {"task": "messplus.train"}}, "unknown header(s) 'headers'"),
        ({"is_eager": True}, "unknown header(s) 'is_eager'"),
    ],
)
def test_every_header_celery_reads_is_checked(change: dict[str, Any], says: str) -> None:
    headers, body = _sent_by_celery()
    problem = envelope_problem(headers | change, body)
    assert problem is not None and says in problem


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([{"a": 1}, {}, {}], "args must be an array, got an object"),
        ([[], [1], {}], "kwargs must be an object, got an array"),
        ([[], {}, {"chain": [{"task": "messplus.train"}]}], "embed links chain"),
        ([[], {}, {"callbacks": "x"}], "embed links callbacks"),
        ([[], {}, {"is_eager": True}], "unknown key(s) in embed 'is_eager'"),
    ],
)
def test_the_body_must_be_args_kwargs_and_an_embed_without_links(body: Any, says: str) -> None:
    headers, _ = _sent_by_celery()
    problem = envelope_problem(headers, body)
    assert problem is not None and says in problem


def test_headers_that_are_not_an_object_are_refused() -> None:
    assert envelope_problem(None, [[], {}, {}]) == "the headers must be an object, got null"
