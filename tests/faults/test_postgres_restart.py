"""Issue 5's Postgres drill: the database restarts in the middle of a batch, dropping every
connection of every worker and staying down a few seconds. Tasks that hit the outage fail
with OperationalError and Celery retries them with backoff (workers/tasks.py); pooled
connections that died are replaced (pool_pre_ping). Every request ends done exactly once,
with one served answer and its cost charged once, and no worker process exits.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from tests.faults.drill import (
    Drill,
    assert_each_done_once,
    assert_workers_alive,
    deployment,
    start_batch,
)

pytestmark = pytest.mark.services

N_PROMPTS = 5000
DOWN_S = 5.0


def test_postgres_restart_loses_nothing(tmp_path: Path) -> None:
    with deployment(tmp_path) as local:
        batch = start_batch(local.fleet, N_PROMPTS)
        drill = Drill(batch, local.fleet, stuck_after_s=None)
        drill.break_midway(partial(local.postgres.restart, down_s=DOWN_S))
        progress = drill.wait_until_finished()
        print(drill.summary("postgres restart", progress))
        assert progress.done == N_PROMPTS and progress.failed == 0
        assert batch.dead_letters() == 0, "a task failed for good instead of retrying"
        assert_each_done_once(batch)
        assert_workers_alive(local.fleet)
