"""Issue 5's first drill: kill -9 a router worker and a model worker in the middle of a
5,000-request batch, and start replacements. The killed workers' unacknowledged messages
are lost with them (Redis gives them back only after its visibility timeout), so the
reconciler publishes the stranded requests again; every request ends done exactly once,
with one served answer and its cost charged once, and the replacements keep running.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.drill import N_PROMPTS, Deployment, run_drill
from workers import queues

pytestmark = pytest.mark.services

KILLED_MODEL = "small-8b"
# Short, so the drill ends soon after the crash: requests merely waiting in the queue are
# published again too, which the idempotent stages must absorb without doubling anything.
STUCK_AFTER_S = 3.0


def crash_and_replace(local: Deployment) -> None:
    """A crash of both stages, then replacements, as a supervisor would start them."""
    local.fleet.kill("route")
    local.fleet.kill(f"model-{KILLED_MODEL}")
    local.fleet.start("route-2", [queues.ROUTE])
    local.fleet.start(f"model-{KILLED_MODEL}-2", [queues.model_queue(KILLED_MODEL)])


def test_killed_workers_lose_and_double_nothing(tmp_path: Path) -> None:
    outcome = run_drill(tmp_path, "worker crash", crash_and_replace, stuck_after_s=STUCK_AFTER_S)
    assert KILLED_MODEL in outcome.models
    assert outcome.progress.done == N_PROMPTS and outcome.progress.failed == 0
