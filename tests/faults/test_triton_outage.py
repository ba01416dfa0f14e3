"""Issue 5's Triton drill: the inference server stops for 30 s in the middle of a batch and
then starts again on the same ports (stopping and starting take ~5 and ~10 s more).

Model workers retry a chunk that finds Triton unavailable a bounded number of times with
backoff (MESSPLUS_INFER_RETRIES, MESSPLUS_INFER_BACKOFF_S, MESSPLUS_INFER_BACKOFF_MAX_S;
workers/backoff.py). With the defaults a chunk's retries span 60.5-121 s, so this outage
costs latency only; a chunk whose retries run out fails the requests its model serves with
the reason "<model>: unavailable: ...", which the run with two retries shows. Either way
every request ends done or failed with that reason, none is left waiting, no worker exits,
and nothing is stored or charged twice.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Request
from tests.faults.drill import (
    Drill,
    assert_each_done_once,
    assert_workers_alive,
    deployment,
    start_batch,
)
from workers import runtime

pytestmark = pytest.mark.services

N_PROMPTS = 5000
OUTAGE_S = 30.0


@pytest.mark.parametrize(
    "retry_settings", [{}, {"infer_retries": "2"}], ids=["default-retries", "two-retries"]
)
def test_triton_outage_ends_every_request(tmp_path: Path, retry_settings: dict[str, str]) -> None:
    with deployment(tmp_path, **retry_settings) as local:
        batch = start_batch(local.fleet, N_PROMPTS)
        # The reconciler as deployed: only requests untouched for the default 300 s.
        drill = Drill(batch, local.fleet, stuck_after_s=runtime.settings().stuck_after_s)
        drill.break_midway(partial(local.restart_zoo, down_s=OUTAGE_S))
        progress = drill.wait_until_finished()
        print(drill.summary(f"triton outage {retry_settings}", progress))
        assert progress.done + progress.failed == N_PROMPTS
        if retry_settings:
            assert progress.failed > 0, "two retries (1.5-3 s) cannot ride out 30 s"
        with batch.sessions.begin() as session:
            reasons = session.scalars(
                select(Request.failure_reason).where(
                    Request.job_id == batch.job_id, Request.status == "failed"
                )
            ).all()
        expected = tuple(f"{model}: unavailable: " for model in batch.models)
        unexpected = {r for r in reasons if not (r and r.startswith(expected))}
        assert not unexpected, sorted(map(str, unexpected))
        assert_each_done_once(batch)
        assert_workers_alive(local.fleet)
