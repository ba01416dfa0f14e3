"""The router stage: decide a chunk of queued requests with MESS+ and record the decisions.

The decision queue is the tenant's virtual queue (moved by ratings) plus the estimated debt
of every served answer whose rating has not arrived (router.sla.UnratedLedger: predicted
satisfaction, corrected by each model's measured miss on the answers that were rated, plus
the tenant's `sla_confidence` standard errors). Ratings are late, sparse or never come;
counting their estimate meanwhile keeps the router from deciding a whole batch on a queue
that has not heard about any of it, and keeps the SLA estimate unbiased when most users
never rate. The feedback stage moves a request from unrated to rated when its rating
lands. Within one chunk the queue steps by the uncorrected expectation; the next chunk
sees the corrected sums. The tenant's queue shift (router.messplus.advance_shift) is
carried from chunk to chunk in the same row.

Ids in, state from the database: the chunk's requests are claimed (a redelivered chunk
finds nothing left to claim), each tenant's SLA row is locked while its requests are
decided (so concurrent routers never decide on the same queue value and counter), and the
decisions are stored in the same transaction. What to send to which model queue is
returned, to be published after the commit; if the process dies in between, the requests
stay 'routed' without an answer and the reconciler re-publishes them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from db.model_stats import ModelTally, read_model_stats
from db.models import Request, ZooModel
from db.predictors import active_version, active_version_id
from db.routing import Decision as StoredDecision
from db.routing import claim_queued, record_decisions
from db.sla import lock_sla_state
from db.sla_calibration import add_served, read_ledger
from db.tenants import get_tenant
from db.zoo import list_models
from router.costs import CostEstimator
from router.messplus import MessPlusSettings, advance_shift, decide_chunk, draws_for
from router.predictor import PredictorError, SatisfactionPredictor
from workers import metrics

__all__ = ["WARM_START_SOURCES", "PredictorCache", "route_chunk", "tenant_settings"]

log = logging.getLogger(__name__)

# metrics["source"] of a version that learned from labelled data outside the live ratings
# (`messplus train FILE.csv`, the demo's labelled history): a warm start.
WARM_START_SOURCES = frozenset({"csv", "history"})


@dataclass
class PredictorCache:
    """The active predictor version, loaded once and reloaded when a newer one is active.

    Checking costs one indexed query per chunk; a router switches to a new version on its
    next chunk without a restart, and a chunk is always decided by exactly one version.

    Routers decide on each model's live rating counts (the model_stats every feedback
    worker keeps), not on the counts a version was trained on. A retrained version's
    counts are those same ratings, taken earlier; a warm start's are offline labels that
    the live counts know nothing of: `offline` keeps them, to be added to the live ones.
    Replacing them instead made a warm start worthless until the first ratings: the
    first batch was routed as if every model satisfied half the prompts.
    """

    version_id: int | None = None
    predictor: SatisfactionPredictor | None = None
    n_models: int = 0
    loads: int = field(default=0)
    offline: tuple[np.ndarray, np.ndarray] | None = None

    def get(self, session: Session, n_models: int) -> tuple[int | None, SatisfactionPredictor]:
        current = active_version_id(session)
        stale = self.predictor is None or current != self.version_id
        if stale or n_models != self.n_models:
            version = active_version(session) if current is not None else None
            loaded, self.offline = None, None
            if version is not None:
                loaded = _load(version.id, version.blob)
            if loaded is None or loaded.n_models != n_models:
                # No version yet, one trained for another zoo or one this router cannot
                # read: start from base rates.
                loaded, current = SatisfactionPredictor.base_rates(n_models), None
            elif version is not None and version.metrics.get("source") in WARM_START_SOURCES:
                self.offline = (loaded.successes.copy(), loaded.trials.copy())
            self.version_id, self.predictor, self.n_models = current, loaded, n_models
            self.loads += 1
        assert self.predictor is not None
        return self.version_id, self.predictor


def _load(version_id: int, blob: bytes) -> SatisfactionPredictor | None:
    """The version's predictor, or None (logged) for a blob this router cannot read, such
    as an older format after an upgrade: routing goes on, on base rates, until a retrain
    publishes a version it can read, instead of every route task failing."""
    try:
        return SatisfactionPredictor.from_bytes(blob)
    except PredictorError as exc:
        log.warning("predictor version %s ignored, routing on base rates: %s", version_id, exc)
        return None


def tenant_settings(raw: dict[str, object]) -> MessPlusSettings:
    """A tenant's router knobs; stored settings name MessPlusSettings fields only."""
    return MessPlusSettings(**raw)  # type: ignore[arg-type]


def _live_counts(
    predictor: SatisfactionPredictor,
    models: Sequence[ZooModel],
    stats: dict[int, ModelTally],
    offline: tuple[np.ndarray, np.ndarray] | None,
) -> None:
    """Put the zoo's live rating counts, plus a warm start's offline ones, into the
    predictor's base layer."""
    successes = np.array([stats[m.id].successes if m.id in stats else 0 for m in models])
    trials = np.array([stats[m.id].trials if m.id in stats else 0 for m in models])
    if offline is not None:
        successes, trials = successes + offline[0], trials + offline[1]
    predictor.set_counts(successes, trials)


def _cost_estimate(models: Sequence[ZooModel], stats: dict[int, ModelTally]) -> np.ndarray:
    """Mean charged cost per model; the price table stands in until a model has answered."""
    prices = np.array([m.cost_per_request for m in models], dtype=np.float64)
    estimator = CostEstimator(len(models), prior=prices if np.all(prices > 0) else None)
    for i, model in enumerate(models):
        tally = stats.get(model.id)
        if tally is not None and tally.cost_count > 0:
            estimator.totals[i] = tally.cost_total
            estimator.counts[i] = tally.cost_count
    return estimator.estimate()


def route_chunk(
    sessions: sessionmaker[Session],
    request_ids: Sequence[int],
    rng: np.random.Generator,
    cache: PredictorCache,
) -> dict[str, list[int]]:
    """Decide the still-queued requests among request_ids; returns model name -> ids to send."""
    started = time.perf_counter()
    publish: dict[str, list[int]] = defaultdict(list)
    # (tenant, served model, explored) -> requests, counted once the decisions are committed
    routed: Counter[tuple[str, str, bool]] = Counter()
    with sessions.begin() as session:
        claimed = claim_queued(session, request_ids)
        if not claimed:
            return {}
        models = [m for m in list_models(session) if m.enabled]
        if not models:
            raise RuntimeError("the zoo has no enabled model")
        stats = read_model_stats(session)
        version_id, predictor = cache.get(session, len(models))
        _live_counts(predictor, models, stats, cache.offline)
        cost = _cost_estimate(models, stats)
        by_tenant: dict[int, list[Request]] = defaultdict(list)
        for request in claimed:
            by_tenant[request.tenant_id].append(request)
        stored: list[StoredDecision] = []
        for tenant_id in sorted(by_tenant):
            requests = by_tenant[tenant_id]
            tenant = get_tenant(session, tenant_id)
            state = lock_sla_state(session, tenant_id)
            settings = tenant_settings(tenant.settings)
            unrated_debt = 0.0
            if settings.count_unrated:
                ledger = read_ledger(session, tenant_id)
                unrated_debt = ledger.debt(tenant.alpha, settings.sla_confidence)
            x = predictor.featuriser.featurise([r.prompt for r in requests])
            decisions = decide_chunk(
                settings,
                tenant.alpha,
                state.request_counter + 1,
                max(0.0, state.virtual_queue + unrated_debt),
                predictor,
                cost,
                x,
                draws_for(rng, len(requests)),
                state.queue_shift,
            )
            last = decisions[-1]
            state.queue_shift = advance_shift(settings, last.queue_shift, last.queue)
            added_debt = 0.0
            served: dict[int, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
            for offset, (request, decision) in enumerate(zip(requests, decisions, strict=True)):
                predicted = float(decision.probabilities[decision.served])
                expected_debt = tenant.alpha - predicted
                added_debt += expected_debt
                count, total = served[models[decision.served].id]
                served[models[decision.served].id] = (count + 1, total + predicted)
                stored.append(
                    StoredDecision(
                        request_id=request.id,
                        tenant_id=tenant_id,
                        t=state.request_counter + 1 + offset,
                        probabilities=decision.probabilities.tolist(),
                        virtual_queue=decision.queue,
                        explored=decision.explored,
                        chosen_model_id=models[decision.served].id,
                        expected_debt=expected_debt,
                        predicted_satisfaction=predicted,
                        predictor_version_id=version_id,
                    )
                )
                for m in decision.queried:
                    publish[models[m].name].append(request.id)
                routed[tenant.name, models[decision.served].name, decision.explored] += 1
            state.request_counter += len(requests)
            state.pending_debt += added_debt
            add_served(session, tenant_id, served)
        record_decisions(session, stored)
    metrics.current().chunk_routed(routed, version_id, time.perf_counter() - started)
    return dict(publish)
