"""P(model m satisfies the request), for every model of the zoo at once.

MESS+ uses these probabilities directly in its decision, so calibration matters more than
ranking. The predictor has two layers:

- `base`: each model's accuracy ignoring the prompt, as a Beta posterior whose prior is
  centred on the zoo's pooled accuracy (empirical Bayes). It is calibrated on average from
  the first labels on, and its spread says how much the router still has to learn.
- `text`: a residual logistic model on hashed n-gram features,
  logit p = logit(base) + x . w_m, trained online with AdaGrad. It can only move a model's
  probability away from its base rate where the prompt's wording has carried signal.

The two are mixed per model by their prequential evidence (Bayesian model averaging over
"does the prompt tell us anything about this model?"): before a label updates anything, both
are scored on it. Where prompts carry no signal the predictor stays on calibrated base rates;
where they do it follows the text model once the evidence says so.

Labels arrive as full vectors (an explored request: every model answered) or as a single
entry (feedback on the one served answer): `observe` takes a mask of the known entries.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from router.features import HashedNgrams, SparseBatch

__all__ = ["FORMAT_VERSION", "PredictorError", "SatisfactionPredictor"]

FORMAT_VERSION = 1
_EPS = 1e-6
_STATE = ("text_weights", "grad_sq", "successes", "trials", "log_evidence_gap")


class PredictorError(Exception):
    """A serialised predictor that cannot be loaded."""


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def _log_likelihood(
    p: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return y * np.log(p) + (1.0 - y) * np.log1p(-p)


def _encode(array: npt.NDArray[Any]) -> dict[str, Any]:
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "data": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii"),
    }


def _decode(blob: dict[str, Any]) -> npt.NDArray[Any]:
    raw = base64.b64decode(blob["data"], validate=True)
    return np.frombuffer(raw, dtype=np.dtype(blob["dtype"])).reshape(blob["shape"]).copy()


@dataclass
class SatisfactionPredictor:
    """Online, calibrated satisfaction probabilities for n_models models."""

    n_models: int
    featuriser: HashedNgrams = field(default_factory=HashedNgrams)
    learning_rate: float = 0.2
    prior_strength: float = 2.0
    text_weights: npt.NDArray[np.float64] = field(init=False)
    grad_sq: npt.NDArray[np.float64] = field(init=False)
    successes: npt.NDArray[np.float64] = field(init=False)
    trials: npt.NDArray[np.float64] = field(init=False)
    log_evidence_gap: npt.NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        if self.n_models < 1:
            raise ValueError("a zoo needs at least one model")
        d, m = self.featuriser.n_features, self.n_models
        self.text_weights = np.zeros((d, m))
        self.grad_sq = np.full((d, m), 1e-8)
        self.successes = np.zeros(m)
        self.trials = np.zeros(m)
        self.log_evidence_gap = np.zeros(m)

    # -- the base layer ---------------------------------------------------------------------

    def posterior(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Beta(a, b) posterior of each model's accuracy.

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
        """Posterior mean accuracy of each model, ignoring the prompt."""
        a, b = self.posterior()
        return a / (a + b)

    def sample_base_probability(
        self, rng: np.random.Generator, n_rows: int
    ) -> npt.NDArray[np.float64]:
        """Thompson draws (n_rows, n_models) from each model's posterior accuracy."""
        a, b = self.posterior()
        return rng.beta(a, b, size=(n_rows, self.n_models))

    # -- the text layer ---------------------------------------------------------------------

    def text_logit_shift(self, x: SparseBatch) -> npt.NDArray[np.float64]:
        """x . w_m for every row and model: how far the prompt moves each base logit."""
        contributions = self.text_weights[x.indices] * x.values[:, None]
        # Row sums of a CSR product as differences of a running sum: one pass, empty rows ok.
        running = np.zeros((len(x.indices) + 1, self.n_models))
        np.cumsum(contributions, axis=0, out=running[1:])
        return running[x.indptr[1:]] - running[x.indptr[:-1]]

    def text_weight(self) -> npt.NDArray[np.float64]:
        """Posterior probability, per model, that the text layer predicts better than base."""
        return _sigmoid(self.log_evidence_gap)

    # -- prediction -------------------------------------------------------------------------

    def predict_features(
        self, x: SparseBatch, base: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """(rows, n_models) satisfaction probabilities for featurised prompts.

        `base` replaces the posterior-mean base rates, e.g. with Thompson draws: a model
        whose accuracy is still uncertain then sometimes looks better than its mean, gets
        served, and so gets learned, instead of being written off after a few unlucky labels.
        """
        if base is None:
            base = self.base_probability()
        base = np.broadcast_to(base, (x.n_rows, self.n_models))
        w = self.text_weight()
        text = _sigmoid(_logit(base) + self.text_logit_shift(x))
        return w * text + (1.0 - w) * base

    def predict(self, prompts: list[str]) -> npt.NDArray[np.float64]:
        return self.predict_features(self.featuriser.featurise(prompts))

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
        for r in range(x.n_rows):
            if known[r].any():
                self._observe_row(x.row(r), satisfied[r], known[r])

    def _observe_row(
        self, x: SparseBatch, y: npt.NDArray[np.float64], known: npt.NDArray[np.bool_]
    ) -> None:
        base = self.base_probability()
        text = _sigmoid(_logit(base) + self.text_logit_shift(x)[0])
        gap = _log_likelihood(text, y) - _log_likelihood(base, y)
        self.log_evidence_gap += np.where(known, gap, 0.0)
        self.successes += np.where(known, y, 0.0)
        self.trials += known
        gradient = np.where(known, text - y, 0.0)
        outer = x.values[:, None] * gradient[None, :]
        self.grad_sq[x.indices] += outer * outer
        self.text_weights[x.indices] -= (
            self.learning_rate * outer / np.sqrt(self.grad_sq[x.indices])
        )

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
            "prior_strength": self.prior_strength,
            "arrays": {name: _encode(getattr(self, name)) for name in _STATE},
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
        if document.get("version") != FORMAT_VERSION:
            raise PredictorError(
                f"predictor format version {document.get('version')} is not {FORMAT_VERSION}"
            )
        try:
            predictor = cls(
                n_models=int(document["n_models"]),
                featuriser=HashedNgrams(**document["featuriser"]),
                learning_rate=float(document["learning_rate"]),
                prior_strength=float(document["prior_strength"]),
            )
            for name in _STATE:
                current = getattr(predictor, name)
                array = _decode(document["arrays"][name])
                if array.shape != current.shape:
                    raise PredictorError(f"{name} has shape {array.shape}, want {current.shape}")
                setattr(predictor, name, array.astype(np.float64))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise PredictorError(f"cannot load predictor: {exc!r}") from exc
        return predictor
