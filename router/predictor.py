"""P(model m satisfies the request), for every model of the zoo at once.

MESS+ uses these probabilities directly in its decision, so calibration matters more than
ranking. The predictor has two layers, mixed per model by their prequential evidence:

- `base`: each model's accuracy ignoring the prompt, as a Beta posterior whose prior is
  centred on the zoo's pooled accuracy (empirical Bayes). Calibrated on average from the
  first ratings on; its spread says how much the router still has to learn.
- `text`: an item-response model, logit p_m(x) = theta_m - difficulty(x), with one
  difficulty per prompt read from hashed n-gram features (x . w) and shared by every model,
  and one ability per model, trained online by stochastic gradient steps whose predictions
  use an average of the weights after every step so far, the k-th weighted by k (iterate
  averaging, Polyak-Ruppert, weighted so that the first and worst iterates fade: Shamir
  and Zhang 2013). A constant step keeps learning; the average removes its noise. The
  per-coordinate AdaGrad it replaces gave every n-gram new to the model a full step: on a
  prompt of a kind seen a hundred times it still moved the prediction by a logit or more
  (0.94, then 0.55, then 0.81 between batches of the same kind), and so lost to base rates
  on every model of every benchmark mix we measured.
  Sharing the difficulty is what lets it learn from a router's own decisions: the router
  sends different prompts to different models, so each model's own ratings are a biased
  sample of prompts, but every rating of every model teaches the same difficulty, and given
  the prompt a rating is unbiased. (Correctness of LLMs on a benchmark is well described
  this way: a prompt hard for one model is hard for the others.)

Before a rating updates anything, both layers are scored on it; the mixture weight of the
text layer is the posterior probability that it predicts that model's ratings better. So
where prompts carry no signal the predictor stays on calibrated base rates, and where they
do it follows the text layer once the evidence says so.

A model's accuracy over the prompts that arrive (what the router needs to know whether it
can carry the SLA) is not its base rate once routing reads the prompt, for the same reason:
it is estimated through the text layer, from the running mean and spread of difficulty over
every rated prompt, and blended with the base rate by the same evidence weight.

Labels arrive as full vectors (an explored request: every model answered) or as a single
entry (feedback on the one served answer): `observe` takes a mask of the known entries.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from router.clusters import PromptClusters
from router.costs import RequestCosts
from router.features import HashedNgrams, SparseBatch

__all__ = ["FORMAT_VERSION", "PredictorError", "SatisfactionPredictor"]

FORMAT_VERSION = 6
# Versions before normalised features and the averaged text layer (v3 and older: their
# weights are of other feature values), and before the cost model's kinds of request (v4:
# its costs were learned without them, and would be read as if every kind cost alike);
# their blobs are refused, not misread.
_RETIRED_VERSIONS = frozenset({1, 2, 3, 4})
# v5 remembered the recent traffic's predicted satisfaction where v6 keeps its difficulty;
# a v5 blob loads with that traffic forgotten (priced as typical until the next retrain
# observes it again), everything it learned kept.
_MIGRATED_VERSION = 5
T = TypeVar("T")
# The difficulty of a batch's prompts (rows,), or of one prompt as a Python float.
_Difficulty = TypeVar("_Difficulty", npt.NDArray[np.float64], float)
_EPS = 1e-6
# A log evidence gap at which the text layer's weight, sigmoid(-gap), is nil.
_NO_EVIDENCE_FOR_TEXT = 30.0
_LEARNED_STATE = (
    "difficulty_weights",
    "weighted_steps",
    "step_count",
    "ability",
    "ability_grad_sq",
    "successes",
    "trials",
    "log_evidence_gap",
    "difficulty_moments",
)
_STATE = (*_LEARNED_STATE, "recent_count", "recent_difficulty", "recent_costs")
# How many of the latest requests the predictor remembers.
_RECENT = 512


class PredictorError(Exception):
    """A serialised predictor that cannot be loaded."""


class _RatingByRating:
    """A predictor's per-model state as Python floats while `observe` steps through a
    batch one rating at a time, stored back at the end.

    A zoo has a handful of models, and numpy's overhead per call on arrays that small
    (~1 us each, some 40 calls a rating) made a nightly fit 5x slower than this. The
    operations are those of the array forms (`posterior`, `_text`) in the same order, so
    they learn the same floats (checked against the array version it replaced on 20,000
    synthetic ratings: identical state).
    """

    def __init__(self, predictor: SatisfactionPredictor) -> None:
        self.predictor = predictor
        self.ability = predictor.ability.tolist()
        self.grad_sq = predictor.ability_grad_sq.tolist()
        self.evidence_gap = predictor.log_evidence_gap.tolist()
        self.successes = predictor.successes.tolist()
        self.trials = predictor.trials.tolist()
        self.moments = predictor.difficulty_moments.tolist()

    def learn(
        self,
        indices: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        y: list[float],
        known: list[bool],
    ) -> None:
        """One rated request: its row's merged (indices, values) (`SparseBatch.merged`), its
        labels and which of them are known."""
        p = self.predictor
        latest_difficulty, difficulty = p._averaged(lambda w: float(values @ w.take(indices)))
        # The base layer's posterior mean (SatisfactionPredictor.posterior), before this
        # rating counts.
        strength = p.prior_strength
        pooled = (sum(self.successes) + 0.5 * strength) / (sum(self.trials) + strength)
        residual_sum = 0.0
        for m, rated in enumerate(known):
            if not rated:
                continue
            a = self.successes[m] + strength * pooled
            b = self.trials[m] - self.successes[m] + strength * (1.0 - pooled)
            text = _sigmoid_float(self.ability[m] - difficulty)
            self.evidence_gap[m] += _log_likelihood(text, y[m]) - _log_likelihood(a / (a + b), y[m])
            self.successes[m] += y[m]
            self.trials[m] += 1.0
            # d(log-loss)/d(logit) at the latest weights, which the steps move; the logit
            # is ability_m - difficulty(x).
            residual = _sigmoid_float(self.ability[m] - latest_difficulty) - y[m]
            residual_sum += residual
            self.grad_sq[m] += residual * residual
            self.ability[m] -= p.ability_learning_rate * residual / math.sqrt(self.grad_sq[m])
        # Welford's running moments of difficulty over rated prompts.
        count, mean, squares = self.moments
        count += 1.0
        delta = difficulty - mean
        mean += delta / count
        self.moments = [count, mean, squares + delta * (difficulty - mean)]
        # Rows have unit length (router.features), so this step moves the prompt's own
        # logit by learning_rate times its residual, whatever its length.
        step = p.learning_rate * residual_sum * values
        p.difficulty_weights[indices] += step
        p.step_count[0] += 1.0
        j = float(p.step_count[0])
        p.weighted_steps[indices] += j * (j - 1.0) * step

    def store(self) -> None:
        p = self.predictor
        p.ability[:] = self.ability
        p.ability_grad_sq[:] = self.grad_sq
        p.log_evidence_gap[:] = self.evidence_gap
        p.successes[:] = self.successes
        p.trials[:] = self.trials
        p.difficulty_moments[:] = self.moments


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # np.maximum/np.minimum for np.clip: its Python wrapper cost more than the sigmoid.
    return 1.0 / (1.0 + np.exp(-np.minimum(np.maximum(z, -30.0), 30.0)))


def _sigmoid_float(z: float) -> float:
    """_sigmoid of one Python float."""
    return 1.0 / (1.0 + math.exp(-min(max(z, -30.0), 30.0)))


def _log_likelihood(p: float, y: float) -> float:
    """Log-likelihood of the label y under probability p, kept off 0 and 1."""
    p = min(max(p, _EPS), 1.0 - _EPS)
    return y * math.log(p) + (1.0 - y) * math.log1p(-p)


def _encode(array: npt.NDArray[Any]) -> dict[str, Any]:
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "data": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii"),
    }


def _decode(blob: dict[str, Any]) -> npt.NDArray[Any]:
    raw = base64.b64decode(blob["data"], validate=True)
    return np.frombuffer(raw, dtype=np.dtype(blob["dtype"])).reshape(blob["shape"]).copy()


def _load_arrays(owner: object, names: tuple[str, ...], arrays: dict[str, Any]) -> None:
    """Set each named array from the document, refusing any of the wrong shape."""
    for name in names:
        current = getattr(owner, name)
        array = _decode(arrays[name])
        if array.shape != current.shape:
            raise PredictorError(f"{name} has shape {array.shape}, want {current.shape}")
        setattr(owner, name, array.astype(np.float64))


@dataclass
class SatisfactionPredictor:
    """Online, calibrated satisfaction probabilities for n_models models."""

    n_models: int
    featuriser: HashedNgrams = field(default_factory=HashedNgrams)
    learning_rate: float = 0.5
    ability_learning_rate: float = 0.2
    prior_strength: float = 2.0
    # The latest difficulty weights, and the sum of every step taken on them weighted by
    # its number: together they give the weights' average (difficulty) without touching
    # all of them on every step.
    difficulty_weights: npt.NDArray[np.float64] = field(init=False)
    weighted_steps: npt.NDArray[np.float64] = field(init=False)
    step_count: npt.NDArray[np.float64] = field(init=False)
    ability: npt.NDArray[np.float64] = field(init=False)
    ability_grad_sq: npt.NDArray[np.float64] = field(init=False)
    successes: npt.NDArray[np.float64] = field(init=False)
    trials: npt.NDArray[np.float64] = field(init=False)
    log_evidence_gap: npt.NDArray[np.float64] = field(init=False)
    # Count, mean and sum of squared deviations of difficulty over rated prompts (Welford).
    difficulty_moments: npt.NDArray[np.float64] = field(init=False)
    # Each model's cost of a request, learned alongside (router.costs.RequestCosts).
    request_costs: RequestCosts = field(init=False)
    # The latest requests observed (a ring buffer), the traffic the router prices each new
    # request against (router.messplus.UpgradePrices): each one's difficulty and predicted
    # costs, from which `recent` recomputes its satisfaction with the current state.
    recent_count: npt.NDArray[np.float64] = field(init=False)
    recent_difficulty: npt.NDArray[np.float64] = field(init=False)
    recent_costs: npt.NDArray[np.float64] = field(init=False)
    # Prompt-independent quantities, computed once per state: a router decides many
    # requests between two updates, and these would otherwise dominate a single decision.
    _memo: dict[Hashable, Any] = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.n_models < 1:
            raise ValueError("a zoo needs at least one model")
        m = self.n_models
        self.difficulty_weights = np.zeros(self.featuriser.n_features)
        self.weighted_steps = np.zeros(self.featuriser.n_features)
        self.step_count = np.zeros(1)
        self.ability = np.zeros(m)
        self.ability_grad_sq = np.full(m, 1e-8)
        self.successes = np.zeros(m)
        self.trials = np.zeros(m)
        self.log_evidence_gap = np.zeros(m)
        self.difficulty_moments = np.zeros(3)
        self.request_costs = RequestCosts(m)
        self.recent_count = np.zeros(1)
        self.recent_difficulty = np.zeros(_RECENT)
        self.recent_costs = np.zeros((_RECENT, m))

    @classmethod
    def base_rates(cls, n_models: int) -> SatisfactionPredictor:
        """A predictor that will only ever learn rating counts (set_counts), as a live
        router does before the first trained version: its text layer gets no weight.

        The even prior between the layers is right for a text layer that learns alongside
        the base, whose evidence soon decides; a text layer that never learns would
        otherwise pull every model halfway to a coin flip for good (an 8B model that
        satisfies 74% would look like 62%, too weak for a 0.7 SLA).
        """
        predictor = cls(n_models)
        predictor.log_evidence_gap[:] = -_NO_EVIDENCE_FOR_TEXT
        return predictor

    # -- the base layer ---------------------------------------------------------------------

    def posterior(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Beta(a, b) posterior of each model's accuracy from its rating counts.

        The prior has the weight of `prior_strength` labels at the zoo's pooled accuracy, so
        a model with few labels starts as an average member of the zoo, not as a coin flip.
        """
        pooled = (self.successes.sum() + 0.5 * self.prior_strength) / (
            self.trials.sum() + self.prior_strength
        )
        a = self.successes + self.prior_strength * pooled
        b = self.trials - self.successes + self.prior_strength * (1.0 - pooled)
        return a, b

    def base_probability(self) -> npt.NDArray[np.float64]:
        """Posterior mean accuracy of each model from its counts, ignoring the prompt."""
        if "base" not in self._memo:
            a, b = self.posterior()
            self._memo["base"] = a / (a + b)
        return self._memo["base"]

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """compute(), cached until the predictor next learns: for quantities a router
        derives from the predictor's state alone (not from the prompt)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[no-any-return]

    def set_counts(
        self, successes: npt.NDArray[np.float64], trials: npt.NDArray[np.float64]
    ) -> None:
        """Replace the rating counts (a live router reads them from the database)."""
        self.successes = np.asarray(successes, dtype=np.float64)
        self.trials = np.asarray(trials, dtype=np.float64)
        self._memo.clear()

    # -- the text layer ---------------------------------------------------------------------

    def difficulty(self, x: SparseBatch) -> npt.NDArray[np.float64]:
        """x . w for every row, w the average of the weights after each step so far (the
        k-th weighted by k): how hard the prompt's wording says it is, for every model."""
        return self._difficulties(x)[1]

    def _difficulties(
        self, x: SparseBatch
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """x . w at the latest weights (what a step moves) and at their average."""
        return self._averaged(x.dot)

    def _row_difficulties(self, x: SparseBatch) -> tuple[float, float]:
        """_difficulties of a one-row x, as Python floats: the same products and IEEE
        operations, without numpy calls on one-element arrays (a router deciding one by
        one, a fit learning rating by rating)."""
        return self._averaged(x.row_dot)

    def _averaged(
        self, dot: Callable[[npt.NDArray[np.float64]], _Difficulty]
    ) -> tuple[_Difficulty, _Difficulty]:
        """dot(w) at the latest weights and at their average."""
        t = float(self.step_count[0])
        latest = dot(self.difficulty_weights)
        if t == 0:
            return latest, latest
        # w_k = the sum of steps s_j, j <= k, averaged with weight k: sum_k k w_k =
        # sum_j s_j (t (t + 1) - j (j - 1)) / 2, over sum_k k = t (t + 1) / 2.
        return latest, latest - dot(self.weighted_steps) / (t * (t + 1.0))

    def text_probability(self, x: SparseBatch) -> npt.NDArray[np.float64]:
        return self._text(self.difficulty(x))

    def _text(self, difficulty: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64]:
        """(rows, n_models) for a batch's difficulties, (n_models,) for one's."""
        if isinstance(difficulty, float):
            return _sigmoid(self.ability - difficulty)
        return _sigmoid(self.ability[None, :] - difficulty[:, None])

    def text_weight(self) -> npt.NDArray[np.float64]:
        """Posterior probability, per model, that the text layer predicts better than base."""
        if "weight" not in self._memo:
            self._memo["weight"] = _sigmoid(self.log_evidence_gap)
        return self._memo["weight"]

    # -- prediction -------------------------------------------------------------------------

    def predict_features(self, x: SparseBatch) -> npt.NDArray[np.float64]:
        """(rows, n_models) satisfaction probabilities for featurised prompts."""
        if x.n_rows == 1:
            # One prompt, as a router deciding one by one sees it: its difficulty as a
            # Python float (8.8 -> 7.0 us for a prompt of boolq, the same floats).
            return self._probabilities(self._row_difficulties(x)[1])[None]
        return self._probabilities(self.difficulty(x))

    def _probabilities(
        self, difficulty: npt.NDArray[np.float64] | float
    ) -> npt.NDArray[np.float64]:
        """(rows, n_models) satisfaction probabilities of prompts of these difficulties, or
        (n_models,) of one: w * text + (1 - w) * base, the base layer's share computed once
        per state."""
        w = self.text_weight()
        base_share = self.memo("base share", lambda: (1.0 - w) * self.base_probability())
        p = self._text(difficulty)
        p *= w
        p += base_share
        return p

    def predict(self, prompts: list[str]) -> npt.NDArray[np.float64]:
        return self.predict_features(self.featuriser.featurise(prompts))

    def accuracy(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Each model's expected accuracy over the prompts that arrive, and its uncertainty.

        The text layer's share averages its predictions over the difficulty seen so far
        (mean and spread of x . w over rated prompts, via the probit approximation to a
        logistic-normal mean); the spread is the base posterior's, which shrinks with the
        number of ratings the model has.
        """
        if "accuracy" not in self._memo:
            self._memo["accuracy"] = self._accuracy()
        return self._memo["accuracy"]

    def _accuracy(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        a, b = self.posterior()
        base = a / (a + b)
        count, mean, squares = self.difficulty_moments
        variance = squares / count if count > 1 else 0.0
        text = _sigmoid((self.ability - mean) / math.sqrt(1.0 + math.pi * variance / 8.0))
        w = self.text_weight()
        blended = w * text + (1.0 - w) * base
        return blended, np.sqrt(blended * (1.0 - blended) / (a + b + 1.0))

    # -- learning ---------------------------------------------------------------------------

    def observe(
        self,
        x: SparseBatch,
        satisfied: npt.NDArray[np.float64],
        known: npt.NDArray[np.bool_],
    ) -> None:
        """Learn from labels (rows, n_models); only entries where `known` is true count."""
        satisfied = np.asarray(satisfied, dtype=np.float64).reshape(x.n_rows, self.n_models)
        known = np.asarray(known, dtype=bool).reshape(x.n_rows, self.n_models)
        rated = np.flatnonzero(known.any(axis=1))
        if not len(rated):
            return
        # Rows whose indices are already sorted and distinct (every row of HashedNgrams)
        # step on their entries as they are; checked once for the batch, not per rating.
        distinct = x.rows_sorted_distinct()
        indptr = x.indptr.tolist()
        steps = _RatingByRating(self)
        try:
            for r in rated.tolist():
                if distinct:
                    indices = x.indices[indptr[r] : indptr[r + 1]]
                    values = x.values[indptr[r] : indptr[r + 1]]
                else:
                    indices, values = x.row(r).merged()
                steps.learn(indices, values, satisfied[r].tolist(), known[r].tolist())
        finally:
            steps.store()
            self._memo.clear()

    def observe_costs(self, x: SparseBatch, cost: npt.NDArray[np.float64]) -> None:
        """Learn from the costs of answered requests (rows, n_models; NaN = did not run).

        Every answered request has a cost, rated or not, so this is also where the predictor
        remembers what it predicted for the traffic that arrives: an unbiased sample of it.
        """
        cost = np.asarray(cost, dtype=np.float64).reshape(x.n_rows, self.n_models)
        answered = np.flatnonzero(~np.isnan(cost).all(axis=1))
        if not len(answered):
            return
        # Learn first: a nightly fit hands over thousands of rows at once, and predictions
        # taken before it would price the traffic as if every request cost the same.
        self.request_costs.observe(x.rows(answered), cost[answered])
        latest = x.rows(answered[-_RECENT:])
        slots = (int(self.recent_count[0]) + np.arange(latest.n_rows)) % _RECENT
        self.recent_difficulty[slots] = self.difficulty(latest)
        self.recent_costs[slots] = self.request_costs.predict(latest)
        self.recent_count += latest.n_rows
        self._memo.clear()

    def recent(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Predicted satisfaction and cost of the latest requests observed (oldest first
        does not matter): (k, n_models) each, k = 0 before any cost was observed.

        Their satisfaction is predicted now, from the difficulty each had when observed,
        not remembered from then: the traffic a request is priced against must be seen as
        the request itself is. Early in a run abilities, base rates and evidence weights
        move fast, and the remembered predictions of the first requests (every model
        alike, or nearly) priced most new requests' upgrades at half the traffic's median
        or less: the router upgraded nearly every request of its first 500 on the mixed
        stream whenever its queue was above V / 2 (alpha 0.7, seeds 0..5: 1.12 -> 1.10x
        the stratified mixture; arc_challenge 1.11 -> 1.07x the fixed mixture).
        """
        k = min(int(self.recent_count[0]), _RECENT)
        return self._probabilities(self.recent_difficulty[:k]), self.recent_costs[:k]

    # -- serialisation ----------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """JSON (never pickle): safe to store in the database and load in another process."""
        f = self.featuriser
        document = {
            "format": "messplus-predictor",
            "version": FORMAT_VERSION,
            "n_models": self.n_models,
            "featuriser": {
                "n_features": f.n_features,
                "min_n": f.min_n,
                "max_n": f.max_n,
                "max_prompt_bytes": f.max_prompt_bytes,
            },
            "learning_rate": self.learning_rate,
            "ability_learning_rate": self.ability_learning_rate,
            "prior_strength": self.prior_strength,
            "arrays": {name: _encode(getattr(self, name)) for name in _STATE},
            "cost_learning_rate": self.request_costs.learning_rate,
            "cost_arrays": {
                name: _encode(getattr(self.request_costs, name)) for name in RequestCosts.STATE
            },
            "cluster_arrays": {
                name: _encode(getattr(self.request_costs.clusters, name))
                for name in PromptClusters.STATE
            },
        }
        return json.dumps(document, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, blob: bytes) -> SatisfactionPredictor:
        try:
            document = json.loads(blob)
        except ValueError as exc:
            raise PredictorError(f"predictor is not JSON: {exc}") from exc
        if not isinstance(document, dict) or document.get("format") != "messplus-predictor":
            raise PredictorError("not a messplus predictor")
        version = document.get("version")
        if version in _RETIRED_VERSIONS:
            raise PredictorError(
                f"predictor format version {version} was learned on other features than this "
                f"router's (version {FORMAT_VERSION}): retrain (messplus retrain) to replace it"
            )
        if version not in (FORMAT_VERSION, _MIGRATED_VERSION):
            raise PredictorError(f"predictor format version {version} is not {FORMAT_VERSION}")
        try:
            predictor = cls(
                n_models=int(document["n_models"]),
                featuriser=HashedNgrams(**document["featuriser"]),
                learning_rate=float(document["learning_rate"]),
                ability_learning_rate=float(document["ability_learning_rate"]),
                prior_strength=float(document["prior_strength"]),
            )
            predictor.request_costs.learning_rate = float(document["cost_learning_rate"])
            if version == _MIGRATED_VERSION:
                _load_arrays(predictor, _LEARNED_STATE, document["arrays"])
            else:
                _load_arrays(predictor, _STATE, document["arrays"])
            _load_arrays(predictor.request_costs, RequestCosts.STATE, document["cost_arrays"])
            _load_arrays(
                predictor.request_costs.clusters, PromptClusters.STATE, document["cluster_arrays"]
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise PredictorError(f"cannot load predictor: {exc!r}") from exc
        return predictor
