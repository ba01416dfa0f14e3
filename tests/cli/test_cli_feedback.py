"""`messplus feedback`: every rating checked against the database before any is published."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from db.jobs import create_job
from db.tenants import get_tenant_by_name
from tests.cli.conftest import Run, one_error_line


@pytest.fixture
def request_ids(run: Callable[..., Run], sessions: sessionmaker[Session]) -> list[int]:
    """Five stored requests of tenant acme and a registered zoo."""
    assert run("tenants", "add", "acme", "--alpha", "0.8").code == 0
    assert run("zoo", "register").code == 0
    with sessions.begin() as session:
        tenant_id = get_tenant_by_name(session, "acme").id
        return create_job(session, tenant_id, [f"p{i}" for i in range(5)], "cli")[1]


def _ratings(broker: redis.Redis) -> list[list[dict[str, object]]]:
    """The ratings of every message on queue `feedback`, oldest first."""
    chunks = []
    for raw in reversed(broker.lrange("feedback", 0, -1)):  # LPUSH: newest first
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
        chunks.append(args[0]["ratings"])
    return chunks


@pytest.mark.services
def test_feedback_publishes_every_rating_in_chunks(
    run: Callable[..., Run],
    cli_env: pytest.MonkeyPatch,
    broker: redis.Redis,
    request_ids: list[int],
    tmp_path: Path,
) -> None:
    cli_env.setenv("MESSPLUS_CHUNK_SIZE", "2")
    ratings: list[dict[str, object]] = [
        {"request_id": request_id, "satisfied": i % 2 == 0}
        for i, request_id in enumerate(request_ids)
    ]
    ratings.append({"request_id": request_ids[0], "satisfied": False, "model": "large-70b"})
    path = tmp_path / "ratings.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ratings))
    result = run("feedback", str(path), "--tenant", "acme")
    assert result.code == 0, result
    assert result.out == "6 ratings sent in 3 messages\n"
    assert broker.llen("feedback") == math.ceil(len(ratings) / 2)
    assert [r for chunk in _ratings(broker) for r in chunk] == ratings


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
    ],
)
def test_a_bad_line_sends_nothing_and_names_the_line(
    run: Callable[..., Run],
    broker: redis.Redis,
    request_ids: list[int],
    tmp_path: Path,
    line: str,
    reason: str,
) -> None:
    good = json.dumps({"request_id": request_ids[0], "satisfied": True})
    path = tmp_path / "ratings.jsonl"
    path.write_text(f"{good}\n{good}\n{line.replace('1,', f'{request_ids[1]},')}\n")
    error = one_error_line(run("feedback", str(path), "--tenant", "acme"))
    assert f"{path}:3: " in error and reason in error and "nothing sent" in error
    assert broker.llen("feedback") == 0


def test_unknown_ids_are_reported_with_their_line_numbers(
    run: Callable[..., Run], request_ids: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "ratings.jsonl"
    rows = [request_ids[0], 777777, request_ids[1], 888888]
    path.write_text("".join(json.dumps({"request_id": i, "satisfied": True}) + "\n" for i in rows))
    result = run("feedback", str(path), "--tenant", "acme")
    assert result.code == 2
    assert result.err.splitlines() == [
        f"{path}:2: unknown request id 777777",
        f"{path}:4: unknown request id 888888",
        f"messplus: error: {path}: 2 bad lines, listed above (nothing sent)",
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
