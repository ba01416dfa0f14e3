"""`messplus submit --wait [--timeout S]`: follow a job until every request is final.

Requests become final only through workers, so a wait can stall: no router running, a
model worker stopped, a Triton that lost a model. After STALL_POLLS progress checks in a
row without any change (and once more before giving up at --timeout) the wait asks the
workers (workers.health) and the broker which queues hold this job's messages with no
worker consuming them, and says so once per stall. The progress bar counts finished
requests only, and is redrawn once per check with the counts of that check, so it never
shows 100% beside requests still queued.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

    from db.jobs import JobProgress

__all__ = ["STALL_POLLS", "TIMEOUT_EXIT", "show_progress", "wait_for_job"]

STALL_POLLS = 10
TIMEOUT_EXIT = 124  # as timeout(1): the job goes on, the wait gave up
HEALTH_TIMEOUT_S = 1.0


def wait_for_job(
    job_id: str, tenant_id: int, total: int, interval_s: float, timeout_s: float | None
) -> int:
    """Poll until the job is finished (status 0) or `timeout_s` passed (TIMEOUT_EXIT);
    progress and one summary line on stderr."""
    from db.jobs import job_progress
    from workers.cli._context import transaction
    from workers.progress import progress_bar

    started = time.monotonic()
    deadline = None if timeout_s is None else started + timeout_s
    unchanged, warned, last = 0, False, None
    with progress_bar(total, f"job {job_id[:8]}", "req") as bar:
        while True:
            with transaction() as session:
                progress = job_progress(session, job_id, tenant_id)
            show_progress(bar, progress)
            if progress.finished:
                break
            unchanged = unchanged + 1 if progress == last else 0
            warned = warned and progress == last
            last = progress
            out_of_time = deadline is not None and time.monotonic() >= deadline
            if not warned and (unchanged >= STALL_POLLS or out_of_time):
                for line in stall_reasons(progress):
                    bar.write(f"messplus: {line}", file=sys.stderr)
                warned = True
            if out_of_time:
                print(
                    f"messplus: job {job_id} not finished after {timeout_s:g} s "
                    f"({_counts(progress)}); it goes on: `messplus status {job_id} --tenant T`",
                    file=sys.stderr,
                )
                return TIMEOUT_EXIT
            pause = interval_s if deadline is None else min(interval_s, deadline - time.monotonic())
            time.sleep(max(pause, 0.0))
    print(
        f"job {job_id}: {progress.done} done, {progress.failed} failed "
        f"in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


def show_progress(bar: tqdm[Any], progress: JobProgress) -> None:
    """One redraw with this check's counts: the counts first, without a redraw of their
    own, so the bar's share and the counts beside it are always of the same moment."""
    bar.set_postfix(
        queued=progress.queued, routed=progress.routed, failed=progress.failed, refresh=False
    )
    bar.update(progress.done + progress.failed - bar.n)


def stall_reasons(progress: JobProgress) -> list[str]:
    """For a job that stopped moving: each queue holding its messages that no worker
    answered for, or whose worker reports a problem. Empty when every such queue is
    consumed by a healthy worker (then it is only slow, or busy)."""
    from db.zoo import list_models
    from workers import queues
    from workers.cli._context import broker_errors, transaction
    from workers.health import ask_workers, consumers, waiting_messages

    with transaction() as session:
        models = [m.name for m in list_models(session)]
    stages = []
    if progress.queued:
        stages.append((queues.ROUTE, "messplus worker route"))
    if progress.routed:
        stages += [(queues.model_queue(m), f"messplus worker model {m}") for m in models]
    reasons = []
    with broker_errors("cannot tell which workers run"):
        workers = ask_workers(HEALTH_TIMEOUT_S)
        for queue, command in stages:
            waiting = waiting_messages(queue)
            serving = consumers(workers, queue)
            if waiting and not serving:
                reasons.append(
                    f"no worker seems to consume the {queue} queue ({waiting} message(s) "
                    f"wait in it, none answered within {HEALTH_TIMEOUT_S:g} s): is `{command}` "
                    "running?"
                )
            for worker in serving:
                reasons += [f"{worker.node} ({queue}): {problem}" for problem in worker.problems]
    return reasons


def _counts(progress: JobProgress) -> str:
    return (
        f"{progress.queued} queued, {progress.routed} routed, {progress.done} done, "
        f"{progress.failed} failed"
    )
