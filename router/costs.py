"""Per-model cost estimates learned from observed costs.

The decision needs E_hat[m] before the request runs. Costs are in whatever unit the zoo
reports (joules, dollars); router.messplus turns them into units of satisfaction so that
the trade-off weight V is unit-free and one default serves every zoo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from router.clusters import PromptClusters
from router.features import SparseBatch

__all__ = ["CLUSTER_PRIOR", "CostEstimator", "RequestCosts", "prompt_length"]

# Rows per learning step of RequestCosts.observe.
_STEP = 256
# Observations of no offset behind each cluster's mean cost offset, so that a kind's first
# few costs do not set its price.
CLUSTER_PRIOR = 5.0


@dataclass
class CostEstimator:
    """Running mean of each model's observed cost per request.

    Until a model has been observed its cost comes from `prior` (for a live zoo: the price
    table; without one, the model order, cheapest first, as 1, 2, 4, ...). With
    `keep_last=True` the estimate is overwritten by the latest observation instead, as in the
    MESS+ authors' simulator.
    """

    n_models: int
    prior: npt.NDArray[np.float64] | None = None
    keep_last: bool = False
    totals: npt.NDArray[np.float64] = field(init=False)
    counts: npt.NDArray[np.float64] = field(init=False)
    last: npt.NDArray[np.float64] = field(init=False)
    # The prior as used: the one given, or the model order's 1, 2, 4, ...
    prior_cost: npt.NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        prior = np.power(2.0, np.arange(self.n_models)) if self.prior is None else self.prior
        self.prior_cost = np.asarray(prior, dtype=np.float64)
        if self.prior_cost.shape != (self.n_models,) or np.any(self.prior_cost <= 0):
            raise ValueError("cost prior must be one positive number per model")
        self.totals = np.zeros(self.n_models)
        self.counts = np.zeros(self.n_models)
        self.last = self.prior_cost.copy()

    def observe(self, model: int, cost: float) -> None:
        self.totals[model] += cost
        self.counts[model] += 1
        self.last[model] = cost

    def estimate(self) -> npt.NDArray[np.float64]:
        """Expected cost per request of each model, in the zoo's unit."""
        if self.keep_last:
            return self.last.copy()
        seen = self.counts > 0
        estimate = np.where(seen, self.totals / np.maximum(self.counts, 1), self.prior_cost)
        # An unseen model priced from the prior is scaled to the units of the seen ones.
        if seen.any() and not seen.all():
            scale = np.median(estimate[seen] / self.prior_cost[seen])
            estimate = np.where(seen, estimate, self.prior_cost * scale)
        return estimate


def prompt_length(x: SparseBatch) -> npt.NDArray[np.float64]:
    """log(1 + n-grams) of every row: the prompt's length, which a model's work grows with."""
    return np.log1p(x.n_grams.astype(np.float64))


@dataclass
class RequestCosts:
    """Each model's cost of *this* request before it runs, learned from observed costs.

    log cost_m(x) = beta_m . [1, length(x)] + x . w_m + offset_m(cluster(x)): an exact
    Bayesian least-squares fit of intercept and slope on the prompt's log length (a zoo
    priced per token costs more for longer prompts), a correction per hashed n-gram learned
    by AdaGrad on what length leaves unexplained, and the mean of what both leave
    unexplained over the requests of the prompt's kind (router.clusters: a cluster of the
    words and shape of prompts), drawn towards zero by `CLUSTER_PRIOR` observations.
    Logs make the fit relative, so it is the same in joules or dollars.

    The kind's mean is what carries most of it: what a request costs is mostly how long
    its answer runs, which its kind of task sets (on the shared benchmarks the 8B model's
    cost varies by 3-6% within a benchmark and threefold between them). n-grams alone
    recovered only part of that and spread the rest as noise over the requests of one
    kind (a log-sd of 0.11-0.24 where the truth has 0.03-0.06), and a decision that ranks
    requests by cost per satisfied answer is as good as that ranking: 1.15x the
    stratified mixture at alpha 0.7 on the mixed stream, 1.10x with the clusters, 1.07x
    with every benchmark's true mean cost.

    The router compares a request's predicted costs with those of the requests that arrive
    (see router.messplus), never with the mean *served* cost: a router that reads costs
    sends each model the requests that are cheap for it, so its served costs are biased.
    """

    n_models: int
    # Hashed n-grams folded into this many buckets: kinds of request differ in cost by a few
    # dozen n-grams, and a table this size stays in cache, where the predictor's 65,536
    # would make every decision wait on memory.
    n_buckets: int = 4096
    learning_rate: float = 0.05
    # Per model: precision matrix and precision-weighted target of the length fit.
    length_precision: npt.NDArray[np.float64] = field(init=False)
    length_target: npt.NDArray[np.float64] = field(init=False)
    ngram_weights: npt.NDArray[np.float64] = field(init=False)
    ngram_grad_sq: npt.NDArray[np.float64] = field(init=False)
    # Kinds of request, and per kind and model the sum and count of what the length fit
    # and the n-grams leave unexplained of the log cost.
    clusters: PromptClusters = field(default_factory=PromptClusters)
    cluster_residual: npt.NDArray[np.float64] = field(init=False)
    cluster_count: npt.NDArray[np.float64] = field(init=False)

    # What predictions derive from the state alone (the length fit's solve and each
    # cluster's offset), keyed by the arrays they derive from: decisions between two
    # observations would otherwise repeat them for every request.
    _derived: tuple[bytes, npt.NDArray[np.float64], npt.NDArray[np.float64]] = field(
        init=False, repr=False, compare=False, default=(b"", np.zeros(0), np.zeros(0))
    )

    STATE = (
        "length_precision",
        "length_target",
        "ngram_weights",
        "ngram_grad_sq",
        "cluster_residual",
        "cluster_count",
    )

    def __post_init__(self) -> None:
        m = self.n_models
        # A prior on the slope only (one pseudo-observation of no growth with length) keeps
        # the solve defined; the intercept's is negligible, so any unit fits alike.
        self.length_precision = np.tile(np.diag([1e-9, 1.0]), (m, 1, 1))
        self.length_target = np.zeros((m, 2))
        if self.n_buckets < 1 or self.n_buckets & (self.n_buckets - 1):
            raise ValueError("n_buckets must be a power of two")
        self.ngram_weights = np.zeros((self.n_buckets, m))
        self.ngram_grad_sq = np.full((self.n_buckets, m), 1e-8)
        self.cluster_residual = np.zeros((self.clusters.n_clusters, m))
        self.cluster_count = np.zeros((self.clusters.n_clusters, m))

    def _coefficients(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(models, 2) intercept and slope of the length fit, and (clusters, models) each
        cluster's mean offset, drawn towards zero by `CLUSTER_PRIOR` observations."""
        state = (
            self.length_precision,
            self.length_target,
            self.cluster_residual,
            self.cluster_count,
        )
        key = b"".join(array.tobytes() for array in state)
        if self._derived[0] != key:
            solved = np.linalg.solve(self.length_precision, self.length_target[:, :, None])
            offset = self.cluster_residual / (self.cluster_count + CLUSTER_PRIOR)
            self._derived = (key, solved[:, :, 0], offset)
        return self._derived[1], self._derived[2]

    def predict(self, x: SparseBatch) -> npt.NDArray[np.float64]:
        """(rows, n_models) predicted cost of every request on every model."""
        beta, offset = self._coefficients()
        log_cost = beta[:, 0] + prompt_length(x)[:, None] * beta[:, 1]
        log_cost += x.dot(self.ngram_weights, folded=True)
        log_cost += offset.take(self.clusters.assign(x.words), axis=0)
        return np.exp(np.minimum(log_cost, 50.0, out=log_cost), out=log_cost)

    def observe(self, x: SparseBatch, cost: npt.NDArray[np.float64]) -> None:
        """Learn from observed costs (rows, n_models); NaN marks a model that did not run.

        Rows are taken in steps of `_STEP`, one AdaGrad step each: one by one as a router
        learns, and fast enough for a nightly fit over every answer.
        """
        cost = np.asarray(cost, dtype=np.float64).reshape(x.n_rows, self.n_models)
        answered = np.flatnonzero(~np.isnan(cost).all(axis=1))
        for start in range(0, len(answered), _STEP):
            step = answered[start : start + _STEP]
            self._observe_step(x.rows(step), cost[step])

    def _observe_step(self, x: SparseBatch, cost: npt.NDArray[np.float64]) -> None:
        known = ~np.isnan(cost)
        log_cost = np.log(np.maximum(np.where(known, cost, 1.0), 1e-300))
        z = np.column_stack([np.ones(x.n_rows), prompt_length(x)])
        ngram = x.dot(self.ngram_weights, folded=True)
        clusters = self.clusters.learn(x.words)
        offset = self._coefficients()[1][clusters]
        target = np.where(known, log_cost - ngram - offset, 0.0)
        self.length_precision += np.einsum("rm,ri,rj->mij", known.astype(np.float64), z, z)
        self.length_target += target.T @ z
        unexplained = np.where(known, log_cost - z @ self._coefficients()[0].T - ngram, 0.0)
        np.add.at(self.cluster_residual, clusters, unexplained)
        np.add.at(self.cluster_count, clusters, known.astype(np.float64))
        residual = np.where(known, unexplained - offset, 0.0)
        # Each n-gram's gradient, summed over the step's rows: -(values * residual).
        rows_of_entries = np.repeat(np.arange(x.n_rows), np.diff(x.indptr))
        indices, position = np.unique(x.indices & (self.n_buckets - 1), return_inverse=True)
        gradient = np.zeros((len(indices), self.n_models))
        np.add.at(gradient, position, -x.values[:, None] * residual[rows_of_entries])
        self.ngram_grad_sq[indices] += gradient * gradient
        self.ngram_weights[indices] -= (
            self.learning_rate * gradient / np.sqrt(self.ngram_grad_sq[indices])
        )
