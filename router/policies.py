"""Routing policies behind one small interface, and the registry that names them.

A policy answers `route(request, rng) -> Decision` and may learn in `observe`. Adding a policy
is one class and one registry entry. `messplus` and `paper` are the same MESS+ implementation
with different settings; `mix`, `stratified` and `oracle` are offline references that are
handed the data set in advance and only make sense in replay.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from router.costs import CostEstimator
from router.dataset import ZooData
from router.decision import Decision
from router.features import SparseBatch
from router.messplus import MessPlusSettings, advance_shift, decide_chunk, draws_for
from router.mixture import cheapest_mixture, cheapest_stratified_mixture
from router.paper import PaperPredictor
from router.predictor import SatisfactionPredictor
from router.sla import UnratedLedger, advance_queue, exploration_probability

__all__ = [
    "PAPER_SETTINGS",
    "POLICIES",
    "MessPlusPolicy",
    "Outcome",
    "Policy",
    "PolicyContext",
    "Request",
    "make_policy",
]


@dataclass(frozen=True)
class Request:
    """One request as a policy sees it: its featurised prompt and, in replay, its row."""

    index: int
    features: SparseBatch


@dataclass(frozen=True)
class Outcome:
    """What became known after serving: per model, satisfaction and cost (NaN = unknown)."""

    satisfied: npt.NDArray[np.float64]
    cost: npt.NDArray[np.float64]


@dataclass(frozen=True)
class PolicyContext:
    """Everything a policy may be built from. `data` is only for the offline references."""

    n_models: int
    alpha: float
    messplus: MessPlusSettings = field(default_factory=MessPlusSettings)
    cost_prior: npt.NDArray[np.float64] | None = None
    data: ZooData | None = None


class Policy(ABC):
    """A router: decides per request, may learn from what it observes afterwards."""

    @abstractmethod
    def route(self, request: Request, rng: np.random.Generator) -> Decision: ...

    def observe(  # noqa: B027 - learning is optional; most baselines learn nothing
        self, request: Request, decision: Decision, outcome: Outcome
    ) -> None:
        """Learn from an answered request; the default policy learns nothing."""

    @property
    def queue(self) -> float:
        """The SLA virtual queue, for policies that keep one (plots show it)."""
        return 0.0


def _fixed(model: int, n_models: int, queue: float = 0.0) -> Decision:
    return Decision(model, (model,), False, np.full(n_models, np.nan), queue)


# -- MESS+ ---------------------------------------------------------------------------------


class MessPlusPolicy(Policy):
    """MESS+: exploration coin, predictor, virtual queue, drift-plus-penalty decision.

    The decision itself is router.messplus.decide_chunk, the same call the live router makes.
    """

    def __init__(
        self,
        context: PolicyContext,
        settings: MessPlusSettings,
        predictor: SatisfactionPredictor | PaperPredictor | None = None,
    ) -> None:
        self.context = context
        self.settings = settings
        self.predictor = predictor or SatisfactionPredictor(context.n_models)
        self.costs = CostEstimator(
            context.n_models, prior=context.cost_prior, keep_last=settings.cost_keep_last
        )
        self.t = 0
        self._queue = settings.initial_queue()
        self._shift = 0.0
        # Served answers not rated yet, as the live router keeps them per tenant and model,
        # and each request's served model and prediction until its rating arrives.
        self.unrated = UnratedLedger.empty(context.n_models)
        self._outstanding: dict[int, tuple[int, float]] = {}

    @property
    def queue(self) -> float:
        return self._queue

    def route(self, request: Request, rng: np.random.Generator) -> Decision:
        self.t += 1
        (decision,) = decide_chunk(
            self.settings,
            self.context.alpha,
            self.t,
            max(0.0, self._queue + self._unrated_debt()),
            self.predictor,
            self.costs.estimate(),
            request.features,
            draws_for(rng, 1),
            self._shift,
        )
        self._shift = advance_shift(self.settings, decision.queue_shift, decision.queue)
        if self.settings.count_unrated:
            predicted = float(decision.probabilities[decision.served])
            self.unrated.serve(decision.served, predicted)
            self._outstanding[request.index] = (decision.served, predicted)
        return decision

    def _unrated_debt(self) -> float:
        if not self.settings.count_unrated:
            return 0.0
        return self.unrated.debt(self.context.alpha, self.settings.sla_confidence)

    def observe(self, request: Request, decision: Decision, outcome: Outcome) -> None:
        for model in decision.queried:
            if not np.isnan(outcome.cost[model]):
                self.costs.observe(model, float(outcome.cost[model]))
        if isinstance(self.predictor, SatisfactionPredictor):
            self.predictor.observe_costs(request.features, outcome.cost[None, :])
        known = ~np.isnan(outcome.satisfied)
        if not decision.explored and not self.settings.learn_from_served:
            known[:] = False
        if known.any():
            self.predictor.observe(
                request.features, np.nan_to_num(outcome.satisfied)[None, :], known[None, :]
            )
        served = outcome.satisfied[decision.served]
        if not np.isnan(served):
            self._queue = advance_queue(self._queue, self.context.alpha, float(served))
            if request.index in self._outstanding:
                model, predicted = self._outstanding.pop(request.index)
                self.unrated.rate(model, predicted, float(served))


# -- baselines -----------------------------------------------------------------------------


class SingleModelPolicy(Policy):
    """Always the same model: the cost and quality anchors of every comparison."""

    def __init__(self, context: PolicyContext, model: int) -> None:
        if not 0 <= model < context.n_models:
            raise ValueError(f"model index {model} is outside the zoo of {context.n_models}")
        self.model = model
        self.n_models = context.n_models

    def route(self, request: Request, rng: np.random.Generator) -> Decision:
        return _fixed(self.model, self.n_models)


class _ExploringBaseline(Policy):
    """Shared by the online baselines: the MESS+ exploration schedule and accuracy counts.

    Exploring works as in MESS+ (every model answers, the most capable one is served), so
    the baselines pay for their learning exactly as MESS+ does and comparisons are fair.
    """

    def __init__(self, context: PolicyContext) -> None:
        self.context = context
        self.t = 0
        self.successes = np.zeros(context.n_models)
        self.trials = np.zeros(context.n_models)
        self.costs = CostEstimator(context.n_models, prior=context.cost_prior)

    def accuracy(self) -> npt.NDArray[np.float64]:
        return (self.successes + 1.0) / (self.trials + 2.0)

    def explore(self, rng: np.random.Generator) -> Decision | None:
        self.t += 1
        if rng.random() < exploration_probability(self.t, self.context.messplus.c):
            m = self.context.n_models
            return Decision(m - 1, tuple(range(m)), True, np.full(m, np.nan), 0.0)
        return None

    def observe(self, request: Request, decision: Decision, outcome: Outcome) -> None:
        known = ~np.isnan(outcome.satisfied)
        self.successes += np.where(known, np.nan_to_num(outcome.satisfied), 0.0)
        self.trials += known
        for model in decision.queried:
            self.costs.observe(model, float(outcome.cost[model]))


class RandomMixturePolicy(_ExploringBaseline):
    """A fixed random mixture, re-chosen from online accuracy estimates: ignores the prompt."""

    def route(self, request: Request, rng: np.random.Generator) -> Decision:
        exploring = self.explore(rng)
        if exploring is not None:
            return exploring
        weights = cheapest_mixture(self.accuracy(), self.costs.estimate(), self.context.alpha)
        model = int(rng.choice(self.context.n_models, p=weights))
        return _fixed(model, self.context.n_models)


class ThresholdPolicy(_ExploringBaseline):
    """RouteLLM-style: strong model when the predictor's score clears one threshold.

    The score is the predicted gain in satisfaction of the most capable model over the
    cheapest. The threshold is calibrated online: the share of requests sent to the strong
    model must lift the expected satisfaction to alpha, so the threshold is the matching
    quantile of the scores seen so far.
    """

    def __init__(self, context: PolicyContext) -> None:
        super().__init__(context)
        self.predictor = SatisfactionPredictor(context.n_models)
        self.scores: list[float] = []

    def route(self, request: Request, rng: np.random.Generator) -> Decision:
        exploring = self.explore(rng)
        probabilities = self.predictor.predict_features(request.features)[0]
        score = float(probabilities[-1] - probabilities[0])
        self.scores.append(score)
        if exploring is not None:
            return exploring
        weak, strong = self.accuracy()[0], self.accuracy()[-1]
        if strong <= weak:
            strong_share = 0.0 if weak >= self.context.alpha else 1.0
        else:
            strong_share = float(np.clip((self.context.alpha - weak) / (strong - weak), 0, 1))
        threshold = float(np.quantile(self.scores, 1.0 - strong_share))
        model = self.context.n_models - 1 if score >= threshold and strong_share > 0 else 0
        return Decision(model, (model,), False, probabilities, 0.0)

    def observe(self, request: Request, decision: Decision, outcome: Outcome) -> None:
        super().observe(request, decision, outcome)
        known = ~np.isnan(outcome.satisfied)
        self.predictor.observe(
            request.features, np.nan_to_num(outcome.satisfied)[None, :], known[None, :]
        )


# -- offline references --------------------------------------------------------------------


def _require_data(context: PolicyContext, name: str) -> ZooData:
    if context.data is None:
        raise ValueError(f"policy {name!r} is an offline reference: it needs the data set")
    return context.data


class MixReference(Policy):
    """The cheapest fixed mixture, knowing each model's true mean accuracy and cost."""

    def __init__(self, context: PolicyContext) -> None:
        data = _require_data(context, "mix")
        self.weights = cheapest_mixture(data.accuracy(), data.mean_cost(), context.alpha)

    def route(self, request: Request, rng: np.random.Generator) -> Decision:
        return _fixed(int(rng.choice(len(self.weights), p=self.weights)), len(self.weights))


class StratifiedReference(Policy):
    """The cheapest fixed mixture per kind of request (the data set's benchmark_name),
    meeting alpha overall, knowing each kind's accuracies and costs: what a router that
    recognises the kind of every request could reach without reading anything finer."""

    def __init__(self, context: PolicyContext) -> None:
        data = _require_data(context, "stratified")
        self.groups = data.groups
        self.weights = cheapest_stratified_mixture(
            data.groups, data.satisfied, data.cost, context.alpha
        )
        self.n_models = data.n_models

    def route(self, request: Request, rng: np.random.Generator) -> Decision:
        weights = self.weights[self.groups[request.index]]
        return _fixed(int(rng.choice(self.n_models, p=weights)), self.n_models)


class OracleReference(Policy):
    """Knows every label: the cheapest assignment whose satisfaction share reaches alpha.

    Each request starts on its cheapest model; satisfying it costs the gap to its cheapest
    satisfying model. Buying the cheapest gaps first until ceil(alpha * N) requests are
    satisfied is optimal (a fractional knapsack with unit values).
    """

    def __init__(self, context: PolicyContext) -> None:
        data = _require_data(context, "oracle")
        cost = data.cost
        cheapest = np.argmin(cost, axis=1)
        satisfying_cost = np.where(data.satisfied == 1, cost, np.inf)
        best_satisfying = np.argmin(satisfying_cost, axis=1)
        rows = np.arange(data.n_requests)
        gap = satisfying_cost[rows, best_satisfying] - cost[rows, cheapest]
        needed = int(np.ceil(context.alpha * data.n_requests))
        order = np.argsort(gap, kind="stable")
        chosen = order[:needed][np.isfinite(gap[order[:needed]])]
        self.assignment = cheapest.copy()
        self.assignment[chosen] = best_satisfying[chosen]
        self.n_models = data.n_models

    def route(self, request: Request, rng: np.random.Generator) -> Decision:
        return _fixed(int(self.assignment[request.index]), self.n_models)


# -- registry ------------------------------------------------------------------------------

PolicyFactory = Callable[[PolicyContext], Policy]

# The authors' simulator: V = 1e-4 on costs in joules, c = 0.1, the predictor trained on
# explored requests only, each cost estimate overwritten by its last explored value.
PAPER_SETTINGS = MessPlusSettings(
    v=1e-4,
    c=0.1,
    headroom=0.0,
    ladder=False,
    learn_from_served=False,
    cost_keep_last=True,
    count_unrated=False,
)

POLICIES: dict[str, PolicyFactory] = {
    "messplus": lambda ctx: MessPlusPolicy(ctx, ctx.messplus),
    "paper": lambda ctx: MessPlusPolicy(ctx, PAPER_SETTINGS, PaperPredictor(ctx.n_models)),
    "random": RandomMixturePolicy,
    "threshold": ThresholdPolicy,
    "mix": MixReference,
    "stratified": StratifiedReference,
    "oracle": OracleReference,
}


def make_policy(name: str, context: PolicyContext, models: tuple[str, ...]) -> Policy:
    """Build a policy by registry name; `single:<model>` names a model of the zoo."""
    if name.startswith("single:"):
        model = name.removeprefix("single:")
        if model not in models:
            raise ValueError(f"unknown model {model!r} in {name!r}; the zoo has {list(models)}")
        return SingleModelPolicy(context, models.index(model))
    if name not in POLICIES:
        known = [*POLICIES, "single:<model>"]
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(known)}")
    return POLICIES[name](context)
