"""The SLA estimate's per tenant and model sums stay equal to the ones counted from the
stored decisions and ratings, through late, duplicate and changed ratings, and the router
decides on them."""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pytest
from sqlalchemy import func, select

from db.inference import mark_failed
from db.migrate import downgrade, upgrade
from db.models import RoutingDecision, SlaState, Tenant, utcnow
from db.pending_ratings import SubmittedRating, check_ratings
from db.sla_calibration import read_ledger, recompute_ledger
from db.sla_report import sla_report
from router.messplus import advance_shift
from router.sla import UnratedLedger
from tests.training.conftest import Deployment
from workers.routing import PredictorCache, route_chunk, tenant_settings


def _ledgers(deployment: Deployment) -> tuple[UnratedLedger, UnratedLedger]:
    with deployment.sessions.begin() as session:
        return (
            read_ledger(session, deployment.tenant_id),
            recompute_ledger(session, deployment.tenant_id),
        )


def _assert_consistent(deployment: Deployment) -> UnratedLedger:
    running, counted = _ledgers(deployment)
    for kept, recounted in zip(astuple(running), astuple(counted), strict=True):
        np.testing.assert_allclose(kept, recounted, atol=1e-9)
    return running


def test_ratings_move_answers_from_unrated_to_rated_and_replace_residuals(
    deployment: Deployment,
) -> None:
    request_ids = deployment.submit([f"question {i}?" for i in range(40)])
    route_chunk(deployment.sessions, request_ids, np.random.default_rng(0), PredictorCache())
    deployment.answer(request_ids)
    ledger = _assert_consistent(deployment)
    assert ledger.unrated.sum() == 40 and ledger.rated.sum() == 0

    first_half = [(i, bool(i % 3)) for i in request_ids[:20]]
    deployment.give(first_half)
    assert deployment.give(first_half).duplicate == 20  # a duplicate changes nothing
    ledger = _assert_consistent(deployment)
    assert (ledger.unrated.sum(), ledger.rated.sum()) == (20, 20)

    with deployment.sessions.begin() as session:
        tenant = session.get_one(Tenant, deployment.tenant_id)
        report = sla_report(session, tenant)
    estimate = report.all_served
    assert (estimate.served, estimate.unrated) == (40, 20)
    assert estimate.lower is not None and estimate.upper is not None
    assert estimate.lower <= (estimate.satisfaction or 0) <= estimate.upper
    assert estimate.upper - estimate.lower > 0.1  # 20 ratings cannot vouch for 20 more

    assert deployment.give([(i, not s) for i, s in first_half[:5]]).changed == 5
    after = _assert_consistent(deployment)
    assert after.rated.sum() == 20
    assert not np.allclose(after.residual, ledger.residual)  # replaced, not added


def test_the_router_decides_on_the_estimated_debt_of_unrated_answers(
    deployment: Deployment,
) -> None:
    cache, rng = PredictorCache(), np.random.default_rng(0)
    first = deployment.submit([f"question {i}?" for i in range(30)])
    route_chunk(deployment.sessions, first, rng, cache)
    with deployment.sessions.begin() as session:
        tenant = session.get(Tenant, deployment.tenant_id)
        state = session.get(SlaState, deployment.tenant_id)
        assert tenant is not None and state is not None
        ledger = read_ledger(session, deployment.tenant_id)
        expected_queue = max(0.0, state.virtual_queue + ledger.debt(tenant.alpha, 0.75))
    (second,) = deployment.submit(["one more question?"])
    route_chunk(deployment.sessions, [second], rng, cache)
    with deployment.sessions.begin() as session:
        decided_at = session.scalar(
            select(RoutingDecision.virtual_queue).where(RoutingDecision.request_id == second)
        )
    assert decided_at is not None and abs(decided_at - expected_queue) < 1e-9


def test_the_router_carries_the_queue_shift_from_chunk_to_chunk(
    deployment: Deployment,
) -> None:
    cache, rng = PredictorCache(), np.random.default_rng(0)
    for chunk in range(3):
        ids = deployment.submit([f"chunk {chunk} question {i}?" for i in range(20)])
        route_chunk(deployment.sessions, ids, rng, cache)
    with deployment.sessions.begin() as session:
        tenant = session.get_one(Tenant, deployment.tenant_id)
        settings = tenant_settings(tenant.settings)
        queues = session.scalars(
            select(RoutingDecision.virtual_queue)
            .where(RoutingDecision.tenant_id == tenant.id)
            .order_by(RoutingDecision.t)
        ).all()
        stored = session.get_one(SlaState, tenant.id).queue_shift
    shift = 0.0
    for queue in queues:
        shift = advance_shift(settings, shift, queue)
    assert len(queues) == 60 and shift != 0.0
    assert stored == pytest.approx(shift, abs=1e-12)


def test_the_migration_rebuilds_the_sums_of_a_deployment_that_upgrades_mid_stream(
    deployment: Deployment, db_url: str
) -> None:
    request_ids = deployment.submit([f"question {i}?" for i in range(30)])
    route_chunk(deployment.sessions, request_ids, np.random.default_rng(0), PredictorCache())
    deployment.answer(request_ids[:12])
    deployment.give([(i, bool(i % 2)) for i in request_ids[:12]])
    before = _assert_consistent(deployment)

    deployment.sessions.kw["bind"].dispose()
    downgrade(db_url, "0004")  # as deployed before the calibration sums existed
    upgrade(db_url)
    after = _assert_consistent(deployment)
    for kept, rebuilt in zip(astuple(before), astuple(after), strict=True):
        np.testing.assert_allclose(kept, rebuilt, atol=1e-9)


def test_a_failed_request_leaves_the_estimate_and_cannot_be_rated(
    deployment: Deployment,
) -> None:
    request_ids = deployment.submit([f"question {i}?" for i in range(10)])
    route_chunk(deployment.sessions, request_ids, np.random.default_rng(0), PredictorCache())
    with deployment.sessions.begin() as session:
        assert mark_failed(session, request_ids[:4], "m: unavailable: down") == request_ids[:4]
    ledger = _assert_consistent(deployment)
    assert ledger.unrated.sum() == 6
    with deployment.sessions.begin() as session:
        state = session.get_one(SlaState, deployment.tenant_id)
        pending = session.scalar(
            select(func.sum(RoutingDecision.expected_debt)).where(
                RoutingDecision.request_id.in_(request_ids[4:])
            )
        )
        assert state.pending_debt == pytest.approx(pending)

    with deployment.sessions.begin() as session:
        _, bad = check_ratings(
            session, deployment.tenant_id, [SubmittedRating(request_ids[0], True, None, utcnow())]
        )
    assert bad == [(0, f"request {request_ids[0]} failed: it has no answer to rate")]


def test_a_request_that_fails_leaves_no_rating_effect_whatever_the_order(
    deployment: Deployment,
) -> None:
    """Issue 12.2: a rating arriving before its request fails (a Triton refusal after the
    rating was sent) once counted an answer that never existed: unrated -1, pending debt
    taken twice, the queue moved. Its rating is refused now, when submitted and, for a
    pending rating stored around that check, when applied after the failure."""
    from db.inference import mark_failed
    from db.pending_ratings import store_ratings

    request_ids = deployment.submit([f"question {i}?" for i in range(6)])
    route_chunk(deployment.sessions, request_ids, np.random.default_rng(0), PredictorCache())
    deployment.answer(request_ids[2:])
    with deployment.sessions.begin() as session:
        queue_before = session.get_one(SlaState, deployment.tenant_id).virtual_queue
        served = dict(
            session.execute(
                select(RoutingDecision.request_id, RoutingDecision.chosen_model_id).where(
                    RoutingDecision.request_id.in_(request_ids[:2])
                )
            ).all()
        )
        # Before it fails: refused when submitted...
        _, bad = check_ratings(
            session, deployment.tenant_id, [SubmittedRating(request_ids[0], True, None, utcnow())]
        )
        assert bad == [
            (0, f"request {request_ids[0]} is not answered yet (routed): rate it once it is done")
        ]
        # ...and a pending rating that got past the check anyway (stored by hand here).
        (forged,) = store_ratings(
            session,
            deployment.tenant_id,
            [SubmittedRating(request_ids[1], True, None, utcnow())],
            [served[request_ids[1]]],
        )
        assert mark_failed(session, request_ids[:2], "m: rejected: too long") == request_ids[:2]
    from workers.feedback import apply_ratings

    summary = apply_ratings(deployment.sessions, [forged])
    assert (summary.new, len(summary.refused)) == (0, 1)
    assert "nothing to rate" in summary.refused[0][1]
    deployment.give([(i, False) for i in request_ids[2:]])
    ledger = _assert_consistent(deployment)
    assert (ledger.unrated.sum(), ledger.rated.sum()) == (0, 4)
    with deployment.sessions.begin() as session:
        state = session.get_one(SlaState, deployment.tenant_id)
        tenant = session.get_one(Tenant, deployment.tenant_id)
        assert (state.rated_count, state.satisfied_count) == (4, 0)
        assert state.pending_debt == pytest.approx(0.0, abs=1e-9)
        assert state.virtual_queue == pytest.approx(queue_before + 4 * tenant.alpha)
