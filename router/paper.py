"""The MESS+ authors' predictor, for the faithful `paper` policy.

Their router reads a frozen ModernBERT embedding through a two-layer head trained online,
with multi-label binary cross-entropy and SGD with momentum, on explored requests only
(every model's label known). No transformer is available offline here, so the embedding
is our hashed n-gram featuriser; the rest follows them: one sigmoid output per model,
trained from a cold start with momentum SGD, used directly as the satisfaction probability
(no calibration to base rates, no uncertainty).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from router.features import HashedNgrams, SparseBatch

__all__ = ["PaperPredictor"]


@dataclass
class PaperPredictor:
    """A multi-label logistic head on prompt features, trained with momentum SGD."""

    n_models: int
    featuriser: HashedNgrams = field(default_factory=HashedNgrams)
    learning_rate: float = 0.1
    momentum: float = 0.9
    weights: npt.NDArray[np.float64] = field(init=False)
    bias: npt.NDArray[np.float64] = field(init=False)
    velocity: npt.NDArray[np.float64] = field(init=False)
    bias_velocity: npt.NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        self.weights = np.zeros((self.featuriser.n_features, self.n_models))
        self.velocity = np.zeros_like(self.weights)
        self.bias = np.zeros(self.n_models)
        self.bias_velocity = np.zeros(self.n_models)

    def predict_features(self, x: SparseBatch) -> npt.NDArray[np.float64]:
        logits = x.dot(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))

    def observe(
        self, x: SparseBatch, satisfied: npt.NDArray[np.float64], known: npt.NDArray[np.bool_]
    ) -> None:
        """One momentum step per row on the known labels' binary cross-entropy."""
        satisfied = np.asarray(satisfied, dtype=np.float64).reshape(x.n_rows, self.n_models)
        known = np.asarray(known, dtype=bool).reshape(x.n_rows, self.n_models)
        for r in range(x.n_rows):
            row = x.row(r)
            gradient = np.where(known[r], self.predict_features(row)[0] - satisfied[r], 0.0)
            indices, values = row.merged()
            self.velocity[indices] = self.momentum * self.velocity[indices] - (
                self.learning_rate * values[:, None] * gradient[None, :]
            )
            self.weights[indices] += self.velocity[indices]
            self.bias_velocity = self.momentum * self.bias_velocity - self.learning_rate * gradient
            self.bias += self.bias_velocity
