"""Issue 5's Triton drill: the inference server stops for 30 s in the middle of a batch and
then starts again on the same ports (stopping and starting take ~5 and ~10 s more).

Model workers retry a chunk that finds Triton unavailable a bounded number of times with
backoff (MESSPLUS_INFER_RETRIES, MESSPLUS_INFER_BACKOFF_S, MESSPLUS_INFER_BACKOFF_MAX_S;
workers/backoff.py). With the defaults a chunk's retries span 60.5-121 s, so this outage
costs latency only; a chunk whose retries run out fails the requests its model serves with
the reason "<model>: unavailable" (the detail goes to the worker's log, not to tenants),
which the run with two retries shows. Either way
every request ends done or failed with that reason, none is left waiting, no worker exits,
and nothing is stored or charged twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.drill import N_PROMPTS, run_drill
from workers.settings import Settings

pytestmark = pytest.mark.services

OUTAGE_S = 30.0


@pytest.mark.parametrize(
    "retry_settings", [{}, {"infer_retries": "2"}], ids=["default-retries", "two-retries"]
)
def test_triton_outage_ends_every_request(tmp_path: Path, retry_settings: dict[str, str]) -> None:
    outcome = run_drill(
        tmp_path,
        f"triton outage {retry_settings}",
        lambda local: local.restart_zoo(down_s=OUTAGE_S),
        # The reconciler as deployed: only requests untouched for the default 300 s.
        stuck_after_s=Settings.stuck_after_s,
        **retry_settings,
    )
    assert outcome.progress.done + outcome.progress.failed == N_PROMPTS
    if retry_settings:
        assert outcome.progress.failed > 0, "two retries (1.5-3 s) cannot ride out 30 s"
    expected = {f"{model}: unavailable" for model in outcome.models}
    unexpected = {r for r in outcome.failure_reasons if r not in expected}
    assert not unexpected, sorted(map(str, unexpected))
