"""MESS+ as pure functions of (settings, state, predictor, draws): one implementation for
the live router and the replay simulator.

The decision for a request is the MESS+ drift-plus-penalty rule,
    m* = argmin_m  V * cost_m + Q * (alpha - p_m),
taken over a *ladder* of candidate models rather than the whole zoo:

- The ladder is the zoo's cost-ordered models minus those the evidence says are
  confidently dominated (worse than a cheaper model, or below the line between their
  neighbours, by `confidence` posterior standard deviations).
- The rung is the pair (lo, hi) where hi is the cheapest ladder model that may still meet
  alpha (its upper confidence bound reaches alpha) and lo the one below it (if the cheapest
  model may meet alpha, the rung is it and the next one). Optimism here is safe: if hi
  cannot in fact carry the SLA, the virtual queue grows, and every `escalation` * V of
  queue moves the rung one step up; past the top rung only the top model is served.
- On the rung, each request is priced: its predicted extra cost of hi over lo (per-request
  costs, router.costs.RequestCosts) per extra expected satisfied answer (each model at its
  upper confidence bound), relative to the recent traffic's median price and clipped to
  [1/2, 2] (UpgradePrices). The request goes to hi when Q exceeds V times its relative
  price: the queue sets how many requests are upgraded and the prices which ones,
  cheapest per satisfied answer first (the plug-in rule of UniRoute, and
  V * cost_m(x) + Q * (alpha - p_m(x)) restricted to the rung). V is unit-free (joules
  or dollars alike), the queue operates within [V/2, 2V] whatever the spread of
  prices, and a new tenant's queue starts at V (a placeholder backlog) plus `headroom`.
  The decision is taken at the queue plus an integral shift (`advance_shift`) that moves
  the operating point to V, so runs end `headroom` answers ahead of alpha.
  A request whose gain is not positive is priced dearest, not out: a model unlucky in
  its first ratings is still served at high queue and so re-learned, not written off.

Why not the argmin over the whole zoo: a few unlucky ratings can make a middle model look
no better than the cheapest, and then the cheapest way to meet alpha *seems* to mix the
cheapest model with the most expensive, which costs several times the true optimum and,
since the middle model is then rarely served, is slow to unlearn. On the ladder an
estimation error can only shift the mix between two neighbouring models, and the queue,
which measures the SLA directly, corrects the mix.

An explored request (the exploration coin came up) asks every model up to the rung's hi,
in the zoo's order, and serves hi's answer: what the decision needs to learn is the gain
of hi over the models below it, per kind of request. Dearer models are only called on if
the queue escalates the rung, and they are rated when served. Without a ladder it asks
every model and serves the last, most capable one. Asking the zoo's largest model as well
while hi might still miss alpha (its lower bound under it) paid for that model on most
explored requests wherever hi's accuracy sits near alpha (the 8B at alpha 0.75 on the
shared mixed stream: 1.11 -> 1.09x the stratified mixture, seeds 0..5), and the answers
were served in place of hi's.

A chunk of requests is decided at once. The queue is advanced request by request inside
the chunk by the expected debt alpha - p(served) (the rating is not known yet), so deciding
a chunk gives exactly the decisions of deciding its requests one by one, and the caller
keeps that expected debt until the ratings arrive (see workers.routing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from router.decision import Decision
from router.features import SparseBatch
from router.paper import PaperPredictor
from router.predictor import SatisfactionPredictor
from router.sla import exploration_probability, validate_alpha

__all__ = [
    "Ladder",
    "MessPlusSettings",
    "UpgradePrices",
    "advance_shift",
    "decide_chunk",
    "draws_for",
    "ladder",
]


@dataclass(frozen=True)
class MessPlusSettings:
    """The router's knobs. Defaults serve any zoo and any cost unit.

    v: the SLA debt, in satisfied answers, the queue carries at its operating point. It
      also sets how hard the router answers the ratings' luck: a request is upgraded when
      Q exceeds V times its relative price, so k unlucky answers move that threshold by
      k / V. At 20 the share of upgrades swung between 20% and 70% from one hundred
      requests to the next on the mixed stream, buying dear upgrades in the swings up;
      at 40 it swings half as far (mixed stream seeds 0..5: 1.04/1.11/1.10 -> 1.03/1.09/
      1.11x stratified; with one user in five rating, seeds 0..2: 1.28/1.44/1.67 ->
      1.24/1.29/1.42, piqa 1.80 -> 1.20x the fixed mixture).
    c: exploration schedule p_t = min(1, c / t^(1/4)); every rating of a served answer also
      teaches the predictor, so fan-out exploration is needed less than in the paper (0.1).
    headroom: the queue starts at V + headroom, so the router aims this many answers ahead.
      What it must cover, the queue's excursion at the end of a run, grows as sqrt(V):
      6 served V = 20 (at 4 winogrande's mean ended 0.0015 short), 9 serves V = 40.
    confidence: posterior standard deviations behind "confidently dominated" and "may meet
      alpha" on the ladder.
    escalation: every escalation * V of queue promotes the rung one model up.
    ladder: off only for the authors' variant, which takes the argmin over every model
      with raw costs (V then carries the cost unit) and starts the queue at 0.
    learn_from_served / cost_keep_last: the authors' variant learns only from explored
      requests and overwrites each cost estimate with the last explored value.
    count_unrated: decide on the virtual queue plus the estimated debt of served answers not
      rated yet (router.sla.UnratedLedger); the authors decide on the queue of rated answers
      only, which under sparse feedback lags the SLA by every unrated answer.
    sla_confidence: standard errors of that estimate the router adds to it. Zero aims the
      expected satisfaction at alpha; more buys a margin against the estimate's doubt, which
      only matters while many answers are unrated (with full feedback it vanishes).
    integral_gain: how fast the queue shift (see `advance_shift`) follows the queue's
      distance from V, per request and answer of distance; 0 turns it off.
    """

    v: float = 40.0
    c: float = 0.03
    headroom: float = 9.0
    confidence: float = 3.0
    escalation: float = 4.0
    ladder: bool = True
    learn_from_served: bool = True
    cost_keep_last: bool = False
    count_unrated: bool = True
    sla_confidence: float = 0.75
    integral_gain: float = 0.001

    def __post_init__(self) -> None:
        if not self.v > 0:
            raise ValueError(f"V must be > 0, got {self.v}")
        if not 0 <= self.c <= 1:
            raise ValueError(f"c must be in [0, 1], got {self.c}")
        if self.headroom < 0:
            raise ValueError(f"headroom must be >= 0, got {self.headroom}")
        if self.confidence < 0:
            raise ValueError(f"confidence must be >= 0, got {self.confidence}")
        if self.sla_confidence < 0:
            raise ValueError(f"sla_confidence must be >= 0, got {self.sla_confidence}")
        if self.integral_gain < 0:
            raise ValueError(f"integral_gain must be >= 0, got {self.integral_gain}")
        if not self.escalation > 1:
            raise ValueError(f"escalation must be > 1, got {self.escalation}")

    def initial_queue(self) -> float:
        return self.v + self.headroom if self.ladder else 0.0


def advance_shift(settings: MessPlusSettings, shift: float, queue: float) -> float:
    """The queue shift after one request decided at `queue`: integral action on the SLA.

    The drift-plus-penalty rule holds the queue wherever the upgrades it buys just carry
    alpha, which is V times the relative price of the marginal upgrade: below V when few
    requests need one, and then the queue's floor at zero throws away satisfied answers it
    could have banked (0.5 points above alpha at 0.65 on the shared mixed stream, paid for
    in upgrades); above V when most do, and a run ends as far behind as the queue rose.
    Deciding on queue + shift, with the shift integrating the queue's distance from V,
    moves that operating point to V whatever the traffic's prices, so a run ends `headroom`
    answers ahead of alpha, the margin it starts with.

    Only a distance within V is integrated: farther off, the queue is answering a
    transient (a cold start, a backlog of unrated answers estimated behind) on its own, and
    integrating that wound the shift up to its bound, to overshoot for a thousand requests
    once the transient had passed (piqa at 20% feedback: 1.3 points above alpha, 2.4x the
    fixed mixture). The bound, V + headroom either way, keeps a long stretch of traffic
    that needs no upgrade from winding it further than one backlog undoes. Off (always 0)
    for the authors' variant.
    """
    if not settings.ladder:
        return 0.0
    v = settings.v
    distance = queue - v
    if not -v <= distance <= v:
        return shift
    bound = settings.initial_queue()
    shift += settings.integral_gain * distance
    # Bounded by comparisons, not min/max calls: a chunk advances it for every request.
    return bound if shift > bound else -bound if shift < -bound else shift


@dataclass(frozen=True)
class Ladder:
    """Candidate models, cheapest first, and the rung (lo, hi) the SLA is won on."""

    models: tuple[int, ...]
    lo: int
    hi: int


def _dominated(
    j: int, ladder: list[int], mean: np.ndarray, sd: np.ndarray, cost: np.ndarray, z: float
) -> bool:
    """Is model j confidently not worth its price given the other ladder models?"""
    cheaper = [i for i in ladder if cost[i] < cost[j]]
    if any(mean[i] - z * sd[i] > mean[j] + z * sd[j] for i in cheaper):
        return True
    position = ladder.index(j)
    if 0 < position < len(ladder) - 1:
        i, k = ladder[position - 1], ladder[position + 1]
        span = cost[k] - cost[i]
        if span > 0:
            # The line through the neighbours' lower bounds: a neighbour known from a few
            # explored answers only (a cheap model the router has not served yet) must not
            # write off a well-known model between them.
            low_i, low_k = mean[i] - z * sd[i], mean[k] - z * sd[k]
            chord = low_i + (low_k - low_i) * (cost[j] - cost[i]) / span
            return bool(mean[j] + z * sd[j] < chord)
    return False


def ladder(
    mean: npt.NDArray[np.float64],
    sd: npt.NDArray[np.float64],
    cost: npt.NDArray[np.float64],
    alpha: float,
    confidence: float,
) -> Ladder:
    """The candidate models and the rung, from each model's posterior accuracy and cost."""
    models = sorted(range(len(mean)), key=lambda m: (cost[m], m))
    changed = True
    while changed and len(models) > 1:
        changed = False
        for j in list(models):
            if _dominated(j, models, mean, sd, cost, confidence):
                models.remove(j)
                changed = True
                break
    may_meet = [m for m in models if mean[m] + confidence * sd[m] >= alpha]
    hi = may_meet[0] if may_meet else max(models, key=lambda m: mean[m])
    position = models.index(hi)
    if position == 0:
        # Even the cheapest model may meet alpha: it becomes lo, and the next model stays
        # within reach for the queue to call on if that hope was wrong.
        position = min(1, len(models) - 1)
    return Ladder(tuple(models), models[max(position - 1, 0)], models[position])


def draws_for(rng: np.random.Generator, n_requests: int) -> npt.NDArray[np.float64]:
    """The randomness of n requests: one uniform each for the exploration coin, in order."""
    return rng.random(n_requests)


class UpgradePrices:
    """A request's price of the upgrade from lo to hi, relative to the traffic's.

    The price is the extra cost per extra expected satisfied answer, (cost_hi - cost_lo) /
    (p_hi - p_lo), with each model at its upper confidence bound as the MESS+ rule weighs
    them; it is divided by the median price over the predictor's latest requests (the
    traffic that arrives, whichever model served it) and clipped to [1/2, 2]: 1 for a
    typical request, and 1 for every request before any traffic was seen.

    Relative and clipped, so that the queue's operating point stays within [V/2, 2V]
    whatever the spread of prices: clear of zero, where the queue's floor would discard
    satisfied answers it has banked, and near the V + headroom it starts at unless nearly
    every request must be upgraded. In raw units a wide spread of prices moves the
    operating point by the spread, and a router that must upgrade most requests would run
    its queue, and so its SLA debt at the end of a run, far above its start. Within the
    clip the price keeps its scale: requests priced alike are upgraded together, as the
    plain MESS+ rule would, and a request whose upgrade gains little waits for twice the
    queue of a typical one (a tighter clip, 3/2, upgraded piqa's short prompts, where the
    8B gains 0.01 over the 1B, with the rest: 1.10-1.17x the mixture, against 1.06-1.10x).
    """

    def __init__(
        self,
        recent_probabilities: npt.NDArray[np.float64],
        recent_costs: npt.NDArray[np.float64],
        upper_offset: npt.NDArray[np.float64],
    ) -> None:
        self._probabilities = recent_probabilities
        self._costs = recent_costs
        self._offset = upper_offset
        self._offsets: list[float] = upper_offset.tolist()
        self._median: dict[tuple[int, int], float] = {}

    def _price(
        self, p: npt.NDArray[np.float64], cost: npt.NDArray[np.float64], lo: int, hi: int
    ) -> npt.NDArray[np.float64]:
        gain = (p[..., hi] - p[..., lo]) + (self._offset[hi] - self._offset[lo])
        extra = cost[..., hi] - cost[..., lo]
        price = np.empty_like(gain)
        price.fill(np.inf)
        return np.divide(extra, gain, out=price, where=gain > 0)

    def _traffic_median(self, lo: int, hi: int) -> float:
        """The recent traffic's median price of this upgrade, computed once per rung."""
        if (lo, hi) not in self._median:
            traffic = self._price(self._probabilities, self._costs, lo, hi)
            self._median[lo, hi] = float(np.median(traffic)) if len(traffic) else np.nan
        return self._median[lo, hi]

    def relative(
        self, p: npt.NDArray[np.float64], cost: npt.NDArray[np.float64], lo: int, hi: int
    ) -> npt.NDArray[np.float64]:
        """Every row's relative price, (rows, n_models) in, (rows,) out."""
        median = self._traffic_median(lo, hi)
        price = self._price(p, cost, lo, hi)
        if median == np.inf:
            # Most of the traffic gains nothing by the upgrade (lo's upper bound is above
            # hi's, as for a cheap model rated a few times only): those requests are the
            # dearest, any other the cheapest. Pricing them all as typical served hi for
            # good and left lo unrated (winogrande at 20% feedback: no 1B answer in a
            # run, 0.73 satisfaction at alpha 0.7).
            return np.where(np.isfinite(price), 0.5, 2.0)
        if not (math.isfinite(median) and median > 0):
            # No traffic yet, or most of it upgrades for free: no scale.
            return np.ones(len(p))
        # Clipped by np.maximum/np.minimum in place: on a single request np.clip's Python
        # wrapper costs more than these two calls.
        price /= median
        np.maximum(price, 0.5, out=price)
        return np.minimum(price, 2.0, out=price)

    def relative_one(self, p: list[float], cost: list[float], lo: int, hi: int) -> float:
        """One request's relative price, as `relative` computes it, in Python floats: the
        same IEEE operations in the same order, so the same price, without the dozen numpy
        calls on one-element arrays (6.7 us, a fifth of a single decision)."""
        median = self._traffic_median(lo, hi)
        gain = (p[hi] - p[lo]) + (self._offsets[hi] - self._offsets[lo])
        price = (cost[hi] - cost[lo]) / gain if gain > 0 else math.inf
        if median == math.inf:
            return 0.5 if math.isfinite(price) else 2.0
        if not (math.isfinite(median) and median > 0):
            return 1.0
        return min(max(price / median, 0.5), 2.0)


def _argmin_all(
    settings: MessPlusSettings,
    alpha: float,
    queue: float,
    probabilities: npt.NDArray[np.float64],
    cost: npt.NDArray[np.float64],
) -> int:
    return int(np.argmin(settings.v * cost + queue * (alpha - probabilities)))


def decide_chunk(
    settings: MessPlusSettings,
    alpha: float,
    first_t: int,
    queue: float,
    predictor: SatisfactionPredictor | PaperPredictor,
    cost_estimate: npt.NDArray[np.float64],
    x: SparseBatch,
    draws: npt.NDArray[np.float64],
    shift: float = 0.0,
) -> list[Decision]:
    """Decide requests first_t, first_t + 1, ... (one per row of x), starting at `queue`
    and queue shift `shift`; the decision between the rung's two models is taken at
    max(0, queue + shift), the rung itself escalates on the queue alone.

    The shift moves the price threshold's operating point; it says nothing about whether
    the rung can carry alpha, which only the debt itself says. Escalating on queue + shift
    let a shift wound up against a margin that grows with the unrated answers (one user
    in five rating) promote the rung with no debt to pay: on the mixed stream at 0.75 a
    seed served 81% of 500 requests to the 70B, whose few ratings priced its answers at
    0.55 (0.81 true), so its own answers raised the estimated debt (1.42 -> 1.28x the
    stratified mixture, full feedback unchanged).

    Each Decision carries the queue and shift it was taken at and the predicted
    (posterior-mean) satisfaction of every model; the queue moves on by alpha - p(served)
    per request and the shift by `advance_shift`.
    """
    alpha = validate_alpha(alpha)
    n, m = x.n_rows, predictor.n_models
    if n == 1:
        coins = [bool(draws[0] < exploration_probability(first_t, settings.c))]
    else:
        t = np.arange(first_t, first_t + n)
        coins = (draws < exploration_probability(t, settings.c)).tolist()
    probabilities = predictor.predict_features(x)
    rungs = None
    # The rung a chunk's prices were computed on at once, and those prices.
    priced_rung: tuple[int, int] | None = None
    row_prices: list[float] = []
    if settings.ladder:
        if not isinstance(predictor, SatisfactionPredictor):
            raise TypeError("the ladder needs accuracy posteriors (a SatisfactionPredictor)")
        mean, sd = predictor.accuracy()
        rungs = predictor.memo(
            ("ladder", alpha, settings.confidence, cost_estimate.tobytes()),
            lambda: ladder(mean, sd, cost_estimate, alpha, settings.confidence),
        )
        request_cost = predictor.request_costs.predict(x)
        prices = predictor.memo(
            ("upgrade prices", settings.confidence),
            lambda: UpgradePrices(*predictor.recent(), settings.confidence * sd),
        )
        # A chunk's prices on the rung itself at once; a single request, and an escalated
        # rung (rarely needed), are priced row by row.
        if n > 1:
            rung_prices = prices.relative(probabilities, request_cost, rungs.lo, rungs.hi)
            row_prices = rung_prices.tolist()
            priced_rung = (rungs.lo, rungs.hi)
    everyone = tuple(range(m))
    decisions = []
    # The loop reads Python floats and bools (the same values): indexing numpy arrays and
    # computing with numpy scalars cost more than a chunk's whole vectorised part.
    predicted = probabilities.tolist()
    for i, p in enumerate(list(probabilities)):
        shifted = max(0.0, queue + shift)
        rung = None if rungs is None else _rung(settings, rungs, queue)
        if coins[i]:
            served = m - 1 if rung is None else rung[1]
            decisions.append(Decision(served, everyone[: served + 1], True, p, queue, shift))
        else:
            if rung is None:
                served = _argmin_all(settings, alpha, shifted, p, cost_estimate)
            else:
                lo, hi = rung
                if lo == hi:
                    served = hi
                else:
                    if rung == priced_rung:
                        price = row_prices[i]
                    else:
                        row_cost = request_cost[i].tolist()
                        price = prices.relative_one(predicted[i], row_cost, lo, hi)
                    # The upgrades cheapest per satisfied answer go first.
                    served = hi if shifted > settings.v * price else lo
            decisions.append(Decision(served, (served,), False, p, queue, shift))
        shift = advance_shift(settings, shift, queue)
        queue = max(0.0, queue + alpha - predicted[i][served])
    return decisions


def _rung(settings: MessPlusSettings, rungs: Ladder, queue: float) -> tuple[int, int]:
    """The rung (lo, hi) at this queue: promoted one model up per escalation * V."""
    every = settings.escalation * settings.v
    if queue < every:
        return rungs.lo, rungs.hi
    steps = int(queue // every)
    position = rungs.models.index(rungs.hi) + steps
    if position >= len(rungs.models):
        # Promoted past the top rung: only the most capable model is left to call on.
        return rungs.models[-1], rungs.models[-1]
    return rungs.models[position - 1], rungs.models[position]
