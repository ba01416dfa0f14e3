"""SLA state: atomic updates that lose nothing under concurrent workers."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.errors import UnknownTenant
from db.models import SlaState
from db.sla import apply_sla_update, lock_sla_state

THREADS = 4
UPDATES_PER_THREAD = 200


def _queue_step_by_step(queue: float, deltas: list[float]) -> float:
    for delta in deltas:
        queue = max(0.0, queue + delta)
    return queue


def _in_threads(work: Callable[[], None]) -> None:
    """Run `work` UPDATES_PER_THREAD times in each of THREADS threads started together."""
    start = threading.Barrier(THREADS)

    def worker(_: int) -> None:
        start.wait()
        for _ in range(UPDATES_PER_THREAD):
            work()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))


def test_queue_updates_match_the_step_by_step_recursion(
    sessions: sessionmaker[Session], tenant_id: int
) -> None:
    rng = random.Random(0)
    expected_q = expected_tracked = 0.0
    for size in [1, 1, 2, 5, 17, 40, 3]:
        deltas = [rng.choice([0.8, -0.2]) + rng.uniform(-0.5, 0.5) for _ in range(size)]
        tracked = deltas[: size // 2]
        with sessions.begin() as session:
            state = apply_sla_update(
                session, tenant_id, requests=size, queue_deltas=deltas, tracked_deltas=tracked
            )
        expected_q = _queue_step_by_step(expected_q, deltas)
        expected_tracked = _queue_step_by_step(expected_tracked, tracked)
        assert state.virtual_queue == pytest.approx(expected_q, abs=1e-9)
        assert state.tracked_queue == pytest.approx(expected_tracked, abs=1e-9)
    assert state.request_counter == 69


def test_a_queue_never_goes_negative(sessions: sessionmaker[Session], tenant_id: int) -> None:
    with sessions.begin() as session:
        state = apply_sla_update(session, tenant_id, queue_deltas=[0.3, -1.0, -0.1])
        assert state.virtual_queue == 0.0
        state = apply_sla_update(session, tenant_id, queue_deltas=[-0.5, 0.25])
        assert state.virtual_queue == 0.25


def test_counters_and_the_returned_row(sessions: sessionmaker[Session], tenant_id: int) -> None:
    with sessions.begin() as session:
        before = lock_sla_state(session, tenant_id)
        assert before.request_counter == 0
        after = apply_sla_update(session, tenant_id, requests=3, rated=2, satisfied=1)
        # The session's copy is refreshed, not left stale.
        assert after is before
        assert (after.request_counter, after.rated_count, after.satisfied_count) == (3, 2, 1)
        apply_sla_update(session, tenant_id, satisfied=-1)  # a rating flipped to unsatisfied
    with sessions.begin() as session:
        state = lock_sla_state(session, tenant_id)
        assert (state.request_counter, state.rated_count, state.satisfied_count) == (3, 2, 0)
        assert state.updated_at.tzinfo is not None


def test_unknown_tenant(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        with pytest.raises(UnknownTenant):
            lock_sla_state(session, 999)
        with pytest.raises(UnknownTenant):
            apply_sla_update(session, 999, requests=1)


def test_concurrent_atomic_updates_lose_nothing(
    sessions: sessionmaker[Session], tenant_id: int
) -> None:
    def update() -> None:
        with sessions.begin() as session:
            apply_sla_update(
                session,
                tenant_id,
                requests=1,
                queue_deltas=[1.0],
                tracked_deltas=[0.5],
                rated=1,
                satisfied=1,
            )

    _in_threads(update)
    total = THREADS * UPDATES_PER_THREAD
    with sessions.begin() as session:
        state = session.get(SlaState, tenant_id)
        assert state is not None
        assert (state.request_counter, state.rated_count, state.satisfied_count) == (total,) * 3
        assert (state.virtual_queue, state.tracked_queue) == (total * 1.0, total * 0.5)


def test_lock_serialises_read_decide_write(sessions: sessionmaker[Session], tenant_id: int) -> None:
    """The router's pattern: read t and Q under the lock, then write; no increment is lost."""

    def route_one() -> None:
        with sessions.begin() as session:
            state = lock_sla_state(session, tenant_id)
            state.request_counter = state.request_counter + 1
            state.virtual_queue = state.virtual_queue + 0.5

    _in_threads(route_one)
    total = THREADS * UPDATES_PER_THREAD
    with sessions.begin() as session:
        state = lock_sla_state(session, tenant_id)
        assert (state.request_counter, state.virtual_queue) == (total, total * 0.5)
