"""`messplus submit`: a whole file checked first, one transaction, ids published in chunks
to the real Redis broker."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.jobs import JobProgress
from db.models import Job, Request, RequestStatus
from tests.cli.conftest import Run, one_error_line
from workers.cli._input import prompt_of
from workers.cli._wait import TIMEOUT_EXIT, show_progress
from workers.progress import progress_bar


@pytest.fixture
def tenant(run: Callable[..., Run]) -> str:
    assert run("tenants", "add", "acme", "--alpha", "0.8").code == 0
    return "acme"


def _write(tmp_path: Path, content: str | bytes, name: str = "batch.jsonl") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def route_messages(broker: redis.Redis) -> list[list[int]]:
    """The request ids of every message on queue `route`, oldest first."""
    chunks = []
    for raw in reversed(broker.lrange("route", 0, -1)):  # LPUSH: newest first
        envelope = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        chunks.append(args[0]["request_ids"])
    return chunks


def _jobs(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


@pytest.mark.services
@pytest.mark.parametrize(("n", "chunk_size"), [(7, 3), (6, 3), (1, 256)])
def test_submit_stores_the_job_and_publishes_ceil_n_over_chunk_messages(
    run: Callable[..., Run],
    cli_env: pytest.MonkeyPatch,
    broker: redis.Redis,
    sessions: sessionmaker[Session],
    tenant: str,
    tmp_path: Path,
    n: int,
    chunk_size: int,
) -> None:
    cli_env.setenv("MESSPLUS_CHUNK_SIZE", str(chunk_size))
    prompts = [f"prompt número {i}" for i in range(n)]
    lines = [json.dumps(p) if i % 2 else json.dumps({"prompt": p}) for i, p in enumerate(prompts)]
    path = _write(tmp_path, "\n".join(lines) + "\n\n")
    result = run("submit", str(path), "--tenant", tenant)
    assert result.code == 0, result
    assert re.fullmatch(r"[0-9a-f]{32}\n", result.out), "stdout must be the job id alone"
    job_id = result.out.strip()
    with sessions.begin() as session:
        rows = session.execute(
            select(Request.id, Request.prompt, Request.status)
            .where(Request.job_id == job_id)
            .order_by(Request.seq)
        ).all()
        job = session.get(Job, job_id)
        assert job is not None and (job.n_requests, job.source) == (n, "batch.jsonl")
    assert [prompt for _, prompt, _ in rows] == prompts
    assert {status for _, _, status in rows} == {RequestStatus.QUEUED.value}
    assert broker.llen("route") == math.ceil(n / chunk_size)
    assert route_messages(broker) == [
        [request_id for request_id, _, _ in rows[i : i + chunk_size]]
        for i in range(0, n, chunk_size)
    ]


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ('"ok"\n{"prompt": "x"\n', 2, "malformed JSON"),
        ('"ok"\n{"prompt": ""}\n', 2, "empty prompt"),
        ('"ok"\n"   "\n', 2, "empty prompt"),
        ('"ok"\n"ok"\n"' + "é" * 6 + '"\n', 3, "prompt is 12 bytes, at most 10"),
        (b'"ok"\n"caf\xe9"\n', 2, "not valid UTF-8"),
        ('{"prompt": "x", "tenant": "evil"}\n', 1, "unknown key(s) 'tenant'"),
        ('{"text": "x"}\n', 1, "unknown key(s) 'text'"),
        ("{}\n", 1, "no 'prompt' key"),
        ('{"prompt": 3}\n', 1, "'prompt' must be a string"),
        ('["a"]\n', 1, "got an array"),
        ("null\n", 1, "got null"),
        ('"a\\u0000b"\n', 1, "NUL character"),
        ('"\\ud800"\n', 1, "unpaired surrogate"),
        ('{"prompt": "a", "prompt": "b"}\n', 1, "key 'prompt' appears twice"),
    ],
)
def test_a_bad_line_refuses_the_whole_file_naming_the_line(
    run: Callable[..., Run],
    cli_env: pytest.MonkeyPatch,
    sessions: sessionmaker[Session],
    tenant: str,
    tmp_path: Path,
    content: str | bytes,
    line: int,
    reason: str,
) -> None:
    cli_env.setenv("MESSPLUS_MAX_PROMPT_BYTES", "10")
    path = _write(tmp_path, content)
    result = run("submit", str(path), "--tenant", tenant)
    error = one_error_line(result)
    assert f"{path}:{line}: " in error and reason in error and "nothing submitted" in error
    assert result.out == ""
    assert _jobs(sessions) == 0


def test_every_bad_line_is_listed_before_the_summary(
    run: Callable[..., Run], sessions: sessionmaker[Session], tenant: str, tmp_path: Path
) -> None:
    path = _write(tmp_path, '"fine"\n{bad\n"fine"\n""\n\n42\n')
    result = run("submit", str(path), "--tenant", tenant)
    assert result.code == 2
    assert result.err.splitlines() == [
        f"{path}:2: malformed JSON: Expecting property name enclosed in double quotes at column 2",
        f"{path}:4: empty prompt",
        f"{path}:6: expected a string or an object with 'prompt', got a number",
        f"messplus: error: {path}: 3 bad lines, listed above (nothing submitted)",
    ]
    assert _jobs(sessions) == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [("", "is empty"), ("\n  \n\n", "is empty"), ('"x"\n' * 40, "is 160 bytes, at most 100")],
)
def test_whole_file_problems(
    run: Callable[..., Run],
    cli_env: pytest.MonkeyPatch,
    sessions: sessionmaker[Session],
    tenant: str,
    tmp_path: Path,
    content: str,
    reason: str,
) -> None:
    cli_env.setenv("MESSPLUS_MAX_FILE_BYTES", "100")
    path = _write(tmp_path, content)
    assert reason in one_error_line(run("submit", str(path), "--tenant", tenant))
    assert _jobs(sessions) == 0


def test_missing_file_and_unknown_tenant(
    run: Callable[..., Run], sessions: sessionmaker[Session], tenant: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert "no such file" in one_error_line(run("submit", str(missing), "--tenant", tenant))
    path = _write(tmp_path, '"hello"\n')
    error = one_error_line(run("submit", str(path), "--tenant", "nobody"))
    assert "unknown tenant 'nobody'" in error
    assert _jobs(sessions) == 0


def test_an_unreachable_broker_stores_nothing(
    run: Callable[..., Run], sessions: sessionmaker[Session], tenant: str, tmp_path: Path
) -> None:
    # cli_env points the broker at a port nobody listens on.
    path = _write(tmp_path, '"hello"\n')
    error = one_error_line(run("submit", str(path), "--tenant", tenant))
    assert "unreachable" in error and "nothing was sent" in error
    assert _jobs(sessions) == 0


@pytest.mark.parametrize(
    "second_reading",
    ['"hello"\n"world"\n"again"\n', '"hello"\n"WORLD"\n', '"hello"\n{"prompt": ""}\n'],
    ids=["a line more", "a prompt changed", "a bad line"],
)
def test_a_file_changed_between_its_two_readings_stores_nothing(
    run: Callable[..., Run],
    sessions: sessionmaker[Session],
    tenant: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    second_reading: str,
) -> None:
    """Issue 12.9: submit checks the file in one reading and stores it in a second, never
    holding it whole; what it stores must be what it checked."""
    path = _write(tmp_path, '"hello"\n"world"\n')
    # The broker is checked between the two readings: the file changes there.
    monkeypatch.setattr(
        "workers.cli._context.check_broker", lambda: path.write_text(second_reading)
    )
    error = one_error_line(run("submit", str(path), "--tenant", tenant))
    assert "changed while it was being submitted (nothing submitted)" in error
    assert _jobs(sessions) == 0


@pytest.fixture
def fake_workers(sessions: sessionmaker[Session]) -> Iterator[None]:
    """Finish every queued request after a moment, the last one as failed, the way workers
    would; --wait only reads the database, so this is all it can tell apart."""
    stop = threading.Event()

    def finish() -> None:
        while not stop.wait(0.2):
            with sessions.begin() as session:
                ids = session.scalars(
                    select(Request.id).where(Request.status == RequestStatus.QUEUED.value)
                ).all()
                if not ids:
                    continue
                *done, failed = sorted(ids)
                session.execute(update(Request).where(Request.id.in_(done)).values(status="done"))
                session.execute(
                    update(Request)
                    .where(Request.id == failed)
                    .values(status="failed", failure_reason="triton timed out")
                )

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


@pytest.mark.services
def test_wait_follows_the_job_until_it_is_finished(
    run: Callable[..., Run],
    broker: redis.Redis,
    tenant: str,
    tmp_path: Path,
    fake_workers: None,
) -> None:
    path = _write(tmp_path, '"a"\n"b"\n"c"\n')
    started = time.monotonic()
    result = run("submit", str(path), "--tenant", tenant, "--wait", "--poll-interval", "0.05")
    assert result.code == 0, result
    assert time.monotonic() - started < 10
    assert re.fullmatch(r"[0-9a-f]{32}\n", result.out)
    job_id = result.out.strip()
    summary = result.err.strip().splitlines()[-1]
    assert summary.startswith(f"job {job_id}: 2 done, 1 failed in ")
    assert broker.llen("route") == 1


def test_a_long_list_of_bad_lines_is_cut_short(
    run: Callable[..., Run], tenant: str, tmp_path: Path
) -> None:
    path = _write(tmp_path, "{\n" * 60)
    lines = run("submit", str(path), "--tenant", tenant).err.splitlines()
    assert len(lines) == 52
    assert lines[49].startswith(f"{path}:50: malformed JSON")
    assert lines[50:] == [
        f"{path}: ... and 10 more bad lines",
        f"messplus: error: {path}: 60 bad lines, listed above (nothing submitted)",
    ]


def test_a_prompt_of_exactly_the_limit_is_accepted() -> None:
    assert prompt_of({"prompt": "é" * 5}, 10) == "é" * 5
    with pytest.raises(ValueError, match="11 bytes"):
        prompt_of("é" * 5 + "x", 10)


@pytest.mark.services
def test_wait_gives_up_at_the_timeout_and_says_no_worker_consumes_the_route_queue(
    run: Callable[..., Run], broker: redis.Redis, tenant: str, tmp_path: Path
) -> None:
    path = _write(tmp_path, '"a"\n"b"\n')
    result = run(
        "submit", str(path), "--tenant", tenant, "--wait", "--timeout", "0.3",
        "--poll-interval", "0.05",
    )  # fmt: skip
    assert result.code == TIMEOUT_EXIT, result
    job_id = result.out.strip()
    assert (
        "messplus: no worker seems to consume the route queue (1 message(s) wait in it, "
        "none answered within 1 s): is `messplus worker route` running?"
    ) in result.err
    assert (
        f"messplus: job {job_id} not finished after 0.3 s (2 queued, 0 routed, 0 done, "
        f"0 failed); it goes on: `messplus status {job_id} --tenant T`"
    ) in result.err
    assert broker.llen("route") == 1  # the job itself is untouched


def test_timeout_needs_wait(run: Callable[..., Run], tenant: str, tmp_path: Path) -> None:
    path = _write(tmp_path, '"a"\n')
    line = one_error_line(run("submit", str(path), "--tenant", tenant, "--timeout", "5"))
    assert "--timeout needs --wait" in line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_never_shows_100_percent_beside_queued_requests() -> None:
    terminal = _Terminal()
    with progress_bar(300, "job", "req", stream=terminal, mininterval=0) as bar:
        show_progress(bar, JobProgress(queued=300, routed=0, done=0, failed=0))
        show_progress(bar, JobProgress(queued=0, routed=0, done=300, failed=0))
    redraws = [part for part in terminal.getvalue().split("\r") if part.strip()]
    assert redraws and all("queued=300" not in r for r in redraws if "100%" in r), redraws
    assert "100%" in redraws[-1] and "queued=0" in redraws[-1]
