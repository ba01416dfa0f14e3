"""Issue 5's Redis drill: the broker restarts in the middle of a batch and comes back empty
(it keeps nothing on disk), losing every queued and unacknowledged message. Postgres is the
source of truth, so the reconciler publishes the stranded requests again and each one ends
done exactly once, with one served answer and its cost charged once.

The workers are not restarted: Celery reconnects to the broker by itself
(broker_connection_retry) and declares its queues again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.drill import N_PROMPTS, run_drill

pytestmark = pytest.mark.services

# Short, so the drill ends soon after the restart; the stages are idempotent, so requests
# merely waiting in a long queue and published again cost nothing twice.
STUCK_AFTER_S = 10.0
DOWN_S = 3.0


def test_redis_restart_loses_nothing(tmp_path: Path) -> None:
    outcome = run_drill(
        tmp_path,
        "redis restart",
        lambda local: local.redis.restart(down_s=DOWN_S),
        stuck_after_s=STUCK_AFTER_S,
    )
    assert outcome.progress.done == N_PROMPTS and outcome.progress.failed == 0
    assert outcome.republished > 0, "the restart lost no message: it hit no batch in flight"
    # A stage that could not publish while the broker was down is not a poison message.
    assert outcome.dead_letters == 0
