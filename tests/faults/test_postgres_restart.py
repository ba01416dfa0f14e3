"""Issue 5's Postgres drill: the database restarts in the middle of a batch, dropping every
connection of every worker and staying down a few seconds. Tasks that hit the outage fail
with OperationalError and Celery retries them with backoff (workers/tasks.py); pooled
connections that died are replaced (pool_pre_ping). Every request ends done exactly once,
with one served answer and its cost charged once, and no worker process exits.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.drill import N_PROMPTS, run_drill

pytestmark = pytest.mark.services

DOWN_S = 5.0


def test_postgres_restart_loses_nothing(tmp_path: Path) -> None:
    # No reconciler: the retries alone must carry every request through the outage.
    outcome = run_drill(
        tmp_path,
        "postgres restart",
        lambda local: local.postgres.restart(down_s=DOWN_S),
        stuck_after_s=None,
    )
    assert outcome.progress.done == N_PROMPTS and outcome.progress.failed == 0
    assert outcome.dead_letters == 0, "a task failed for good instead of retrying"
