"""`messplus status` and `messplus results`: read from the database, only by the job's
own tenant."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.inference import ModelAnswer, mark_done, mark_failed, record_responses
from db.jobs import create_job
from db.models import ZooModel
from db.routing import Decision, claim_queued, record_decisions
from db.tenants import get_tenant_by_name
from db.zoo import list_models
from tests.cli.conftest import Run, one_error_line


@pytest.fixture
def job(run: Callable[..., Run], sessions: sessionmaker[Session]) -> tuple[str, list[int]]:
    """A job of tenant acme with one request done (explored: every model answered), one
    failed, one still queued; tenant globex exists too."""
    for name, alpha in (("acme", "0.8"), ("globex", "0.6")):
        assert run("tenants", "add", name, "--alpha", alpha).code == 0
    assert run("zoo", "register", "--no-check").code == 0
    with sessions.begin() as session:
        models = list_models(session)
        tenant_id = get_tenant_by_name(session, "acme").id
        job_id, ids = create_job(session, tenant_id, ["hi", "hard", "later"], "batch.jsonl")
    done, failed, _ = ids
    with sessions.begin() as session:
        claim_queued(session, [done, failed])
        record_decisions(
            session,
            [
                Decision(
                    request_id=request_id,
                    tenant_id=tenant_id,
                    t=t,
                    probabilities=[0.5] * len(models),
                    virtual_queue=0.0,
                    explored=explored,
                    chosen_model_id=model.id,
                )
                for request_id, t, explored, model in (
                    (done, 1, True, models[0]),
                    (failed, 2, False, models[-1]),
                )
            ],
        )
        record_responses(session, [_answer(done, m, 1.5 * (i + 1)) for i, m in enumerate(models)])
        mark_done(session, [done])
        mark_failed(session, [failed], "triton timed out")
    return job_id, ids


def _answer(request_id: int, model: ZooModel, cost: float) -> ModelAnswer:
    return ModelAnswer(
        request_id=request_id,
        model_id=model.id,
        text=f"{model.name}: hello",
        tokens=3,
        latency_s=0.1,
        cost=cost,
    )


def test_status_counts_each_state(run: Callable[..., Run], job: tuple[str, list[int]]) -> None:
    job_id, _ = job
    result = run("status", job_id, "--tenant", "acme")
    assert result.code == 0, result
    assert result.out == (
        f"job {job_id}: 3 requests, 1 queued, 0 routed, 1 done, 1 failed (running)\n"
    )
    document = json.loads(run("status", job_id, "--tenant", "acme", "--json").out)
    assert document == {
        "job": job_id,
        "queued": 1,
        "routed": 0,
        "done": 1,
        "failed": 1,
        "total": 3,
        "finished": False,
    }


def test_results_one_object_per_request(
    run: Callable[..., Run], job: tuple[str, list[int]], tmp_path: Path
) -> None:
    job_id, (done, failed, queued) = job
    result = run("results", job_id, "--tenant", "acme")
    assert result.code == 0, result
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert rows[0] == {
        "request_id": done,
        "seq": 0,
        "prompt": "hi",
        "status": "done",
        "failure_reason": None,
        "served_model": "tiny-1b",
        "response": "tiny-1b: hello",
        "cost": pytest.approx(1.5 + 3.0 + 4.5),  # explored: every answer is charged
    }
    assert rows[1] == {
        "request_id": failed,
        "seq": 1,
        "prompt": "hard",
        "status": "failed",
        "failure_reason": "triton timed out",
        "served_model": "large-70b",
        "response": None,
        "cost": None,
    }
    assert (rows[2]["request_id"], rows[2]["status"]) == (queued, "queued")

    path = tmp_path / "results.jsonl"
    written = run("results", job_id, "--tenant", "acme", "-o", str(path))
    assert written.code == 0 and written.out == ""
    assert path.read_text(encoding="utf-8") == result.out


@pytest.mark.parametrize("command", ["status", "results"])
def test_another_tenants_job_is_an_unknown_job(
    run: Callable[..., Run], job: tuple[str, list[int]], command: str
) -> None:
    job_id, _ = job
    foreign = one_error_line(run(command, job_id, "--tenant", "globex"))
    missing = one_error_line(run(command, "0" * 32, "--tenant", "globex"))
    assert foreign == f"messplus: error: unknown job {job_id!r}"
    # Same words whether the job belongs to someone else or does not exist at all.
    assert foreign.replace(job_id, "ID") == missing.replace("0" * 32, "ID")
    assert "unknown tenant 'nobody'" in one_error_line(run(command, job_id, "--tenant", "nobody"))
