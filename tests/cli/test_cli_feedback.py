"""`messplus feedback`: every rating checked against the answers that exist, all bad lines of
a file reported in one pass, and the ratings stored (in order) before they are published."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.jobs import create_job
from db.models import PendingRating
from db.tenants import get_tenant_by_name
from db.zoo import list_models
from tests.answered import answer_by_hand
from tests.cli.conftest import Run, one_error_line


@pytest.fixture
def request_ids(run: Callable[..., Run], sessions: sessionmaker[Session]) -> list[int]:
    """Seven requests of tenant acme on a registered zoo: five answered by the smallest
    model (the first explored, so every model answered it), then one routed to it and not
    answered yet, and one still queued."""
    assert run("tenants", "add", "acme", "--alpha", "0.8").code == 0
    assert run("zoo", "register", "--no-check").code == 0
    with sessions.begin() as session:
        tenant_id = get_tenant_by_name(session, "acme").id
        ids = create_job(session, tenant_id, [f"p{i}" for i in range(7)], "cli")[1]
        models = [model.id for model in list_models(session)]
    answer_by_hand(sessions, ids[:1], models[0], answered_by=models)
    answer_by_hand(sessions, ids[1:5], models[0])
    answer_by_hand(sessions, ids[5:6], models[0], answered_by=[])
    return ids


def _rating_ids(broker: redis.Redis) -> list[list[int]]:
    """The rating ids of every message on queue `feedback`, oldest first."""
    chunks = []
    for raw in reversed(broker.lrange("feedback", 0, -1)):  # LPUSH: newest first
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
        chunks.append(args[0]["rating_ids"])
    return chunks


def _pending(sessions: sessionmaker[Session]) -> list[tuple[int, int, bool, dt.datetime]]:
    with sessions.begin() as session:
        return [
            (row.id, row.request_id, row.satisfied, row.rated_at)
            for row in session.scalars(select(PendingRating).order_by(PendingRating.id))
        ]


@pytest.mark.services
def test_feedback_stores_every_rating_in_order_then_publishes_their_ids_in_chunks(
    run: Callable[..., Run],
    cli_env: pytest.MonkeyPatch,
    broker: redis.Redis,
    sessions: sessionmaker[Session],
    request_ids: list[int],
    tmp_path: Path,
) -> None:
    cli_env.setenv("MESSPLUS_CHUNK_SIZE", "2")
    ratings: list[dict[str, object]] = [
        {"request_id": request_id, "satisfied": i % 2 == 0}
        for i, request_id in enumerate(request_ids[:5])
    ]
    ratings.append({"request_id": request_ids[0], "satisfied": False, "model": "large-70b"})
    ratings.append(
        {"request_id": request_ids[1], "satisfied": False, "rated_at": "2026-11-30T08:00:00+01:00"}
    )
    path = tmp_path / "ratings.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ratings))
    before = dt.datetime.now(dt.UTC)
    result = run("feedback", str(path), "--tenant", "acme")
    assert result.code == 0, result
    assert result.out == "7 ratings stored and sent in 4 messages\n"
    pending = _pending(sessions)
    assert [(request_id, satisfied) for _, request_id, satisfied, _ in pending] == [
        (r["request_id"], r["satisfied"]) for r in ratings
    ]
    assert all(rated_at >= before for *_, rated_at in pending[:6])  # rated when sent
    assert pending[6][3] == dt.datetime(2026, 11, 30, 7, tzinfo=dt.UTC)
    assert broker.llen("feedback") == math.ceil(len(ratings) / 2)
    assert [i for chunk in _rating_ids(broker) for i in chunk] == [row[0] for row in pending]


@pytest.mark.services
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"request_id": 1, "satisfied": tru}', "malformed JSON"),
        ('{"request_id": 1}', "missing keys ['satisfied']"),
        ('{"request_id": 1, "satisfied": 1}', "satisfied must be true or false"),
        ('{"request_id": true, "satisfied": true}', "request_id must be a positive integer"),
        ('{"request_id": -3, "satisfied": true}', "request_id must be a positive integer"),
        ('{"request_id": 1, "satisfied": true, "why": "x"}', "unknown keys ['why']"),
        ('{"request_id": 1, "satisfied": true, "model": ""}', "model must be a non-empty"),
        ("[1, true]", "payload must be a JSON object"),
        ('{"request_id": 999999, "satisfied": true}', "unknown request id 999999"),
        ('{"request_id": 1, "satisfied": true, "model": "gpt-9"}', "unknown model 'gpt-9'"),
        (
            '{"request_id": 9223372036854775808, "satisfied": true}',
            "request_id must be a positive integer below 2**63",
        ),
        ('{"request_id": 1, "satisfied": true, "rated_at": 5}', "rated_at must be an ISO 8601"),
        ('{"request_id": 1, "satisfied": true, "rated_at": "yesterday"}', "not an ISO 8601"),
        ('{"request_id": 1, "satisfied": true, "rated_at": "2026-11-30T08:00"}', "no UTC offset"),
        ('{"request_id": 1, "satisfied": true, "rated_at": "2999-01-01T00:00Z"}', "the future"),
        (
            '{"request_id": 1, "satisfied": true, "model": "small-8b"}',
            "'small-8b' did not answer request",
        ),
    ],
)
def test_a_bad_line_sends_nothing_and_names_the_line(
    run: Callable[..., Run],
    broker: redis.Redis,
    sessions: sessionmaker[Session],
    request_ids: list[int],
    tmp_path: Path,
    line: str,
    reason: str,
) -> None:
    good = json.dumps({"request_id": request_ids[0], "satisfied": True})
    path = tmp_path / "ratings.jsonl"
    path.write_text(f"{good}\n{good}\n{line.replace(' 1,', f' {request_ids[1]},')}\n")
    error = one_error_line(run("feedback", str(path), "--tenant", "acme"))
    assert f"{path}:3: " in error and reason in error and "nothing sent" in error
    assert broker.llen("feedback") == 0
    assert _pending(sessions) == []


def test_a_rating_of_an_answer_not_there_yet_is_refused_with_the_reason(
    run: Callable[..., Run], sessions: sessionmaker[Session], request_ids: list[int], tmp_path: Path
) -> None:
    """Issue 12.5: the request is routed (or queued), its answer not stored yet: refused, so
    the user rates again once it is done, instead of a rating the worker would drop."""
    path = tmp_path / "ratings.jsonl"
    for request_id, status in ((request_ids[5], "routed"), (request_ids[6], "queued")):
        path.write_text(json.dumps({"request_id": request_id, "satisfied": True}) + "\n")
        error = one_error_line(run("feedback", str(path), "--tenant", "acme"))
        assert f"request {request_id} is not answered yet ({status})" in error
    assert _pending(sessions) == []


def test_every_bad_line_is_reported_in_one_pass(
    run: Callable[..., Run], request_ids: list[int], tmp_path: Path
) -> None:
    """Issue 11.9: malformed lines and lines naming no answer, together."""
    path = tmp_path / "ratings.jsonl"
    rows = [
        json.dumps({"request_id": request_ids[0], "satisfied": True}),
        json.dumps({"request_id": 777777, "satisfied": True}),
        '{"request_id": 3, "satisfied": tru}',
        json.dumps({"request_id": request_ids[1], "satisfied": True}),
        json.dumps({"request_id": request_ids[2], "satisfied": "yes"}),
        json.dumps({"request_id": request_ids[5], "satisfied": False}),
    ]
    path.write_text("".join(row + "\n" for row in rows))
    result = run("feedback", str(path), "--tenant", "acme")
    assert result.code == 2
    assert result.err.splitlines() == [
        f"{path}:2: unknown request id 777777",
        f"{path}:3: malformed JSON: Expecting value at column 32",
        f"{path}:5: satisfied must be true or false",
        f"{path}:6: request {request_ids[5]} is not answered yet (routed): rate it once it is done",
        f"messplus: error: {path}: 4 bad lines, listed above (nothing sent)",
    ]


def test_empty_and_missing_files(run: Callable[..., Run], tmp_path: Path) -> None:
    path = tmp_path / "ratings.jsonl"
    path.write_text("")
    assert "is empty" in one_error_line(run("feedback", str(path), "--tenant", "acme"))
    assert "no such file" in one_error_line(
        run("feedback", str(tmp_path / "nope.jsonl"), "--tenant", "acme")
    )


def test_another_tenants_request_is_unknown(
    run: Callable[..., Run],
    sessions: sessionmaker[Session],
    request_ids: list[int],
    tmp_path: Path,
) -> None:
    assert run("tenants", "add", "zeta", "--alpha", "0.6").code == 0
    path = tmp_path / "ratings.jsonl"
    path.write_text(json.dumps({"request_id": request_ids[0], "satisfied": True}) + "\n")
    result = run("feedback", str(path), "--tenant", "zeta")
    assert result.code == 2
    assert f"{path}:1: unknown request id {request_ids[0]}" in result.err
    assert "unknown tenant" in one_error_line(run("feedback", str(path), "--tenant", "nobody"))


@pytest.mark.services
def test_ratings_stored_when_the_broker_goes_away_are_reported_and_sent_later(
    run: Callable[..., Run],
    cli_env: pytest.MonkeyPatch,
    broker: redis.Redis,
    sessions: sessionmaker[Session],
    request_ids: list[int],
    tmp_path: Path,
) -> None:
    """Issue 12.4, the other half: a rating the CLI reports as sent reaches the database, or
    the CLI says where it is. The broker answers the check and is gone when the ratings are
    published (a stop between the two): they stay stored, the line says so and names the
    command that sends them, and `messplus reconcile` sends them once the broker is back."""
    import workers.cli._context as context
    from workers.app import use_broker

    path = tmp_path / "ratings.jsonl"
    path.write_text(
        "".join(json.dumps({"request_id": i, "satisfied": True}) + "\n" for i in request_ids[:3])
    )
    reachable = context.settings().broker_url
    gone = "redis://127.0.0.1:1/0"
    cli_env.setattr(context, "check_broker", lambda: None)  # it passed; then the broker went
    cli_env.setenv("MESSPLUS_BROKER_URL", gone)
    use_broker(gone)
    line = one_error_line(run("feedback", str(path), "--tenant", "acme"))
    assert "unreachable" in line and "the 3 ratings are stored" in line
    assert "messplus reconcile" in line
    assert [request_id for _, request_id, *_ in _pending(sessions)] == request_ids[:3]
    assert broker.llen("feedback") == 0

    cli_env.setenv("MESSPLUS_BROKER_URL", reachable)
    use_broker(reachable)
    result = run("reconcile", "--older-than", "0")
    assert result.code == 0 and "3 pending ratings" in result.out
    assert [i for chunk in _rating_ids(broker) for i in chunk] == [
        row[0] for row in _pending(sessions)
    ]
