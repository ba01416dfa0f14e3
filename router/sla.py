"""The SLA's virtual queue and the exploration schedule of MESS+.

The virtual queue Q is the Lyapunov device that turns the long-run constraint
"mean satisfaction >= alpha" into a per-request price: every unsatisfied answer adds
(alpha - 0) to Q, every satisfied one removes (1 - alpha), and Q never goes below zero.
While Q is high the decision pays more for capable models; when the SLA is ahead Q drains
and cheap models win again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "CALIBRATION_PRIOR_RATINGS",
    "UnratedLedger",
    "advance_queue",
    "exploration_probability",
    "validate_alpha",
]

# Pseudo-ratings of zero residual behind each model's calibration estimate, so that the
# first few ratings of a model cannot swing the correction of hundreds of unrated answers.
CALIBRATION_PRIOR_RATINGS = 5.0
# The residual variance assumed before any rating: the largest a yes/no rating can have.
_PRIOR_RESIDUAL_VARIANCE = 0.25


def validate_alpha(alpha: float) -> float:
    """The SLA target must be a share strictly between 0 and 1."""
    if not (isinstance(alpha, int | float) and 0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


def advance_queue(queue: float, alpha: float, satisfied: float) -> float:
    """Q <- max(0, Q + alpha - s) for one served answer with satisfaction s in [0, 1]."""
    return max(0.0, queue + alpha - satisfied)


def exploration_probability(t: int | np.ndarray, c: float) -> float | np.ndarray:
    """p_t = min(1, c / t^(1/4)) for the t-th request (t counts from 1).

    Decays slowly enough that the predictor keeps seeing full label vectors, which is what
    the O(M / T^(1/4)) cost-gap bound of MESS+ rests on.
    """
    if isinstance(t, int):
        # One request, as a router deciding one by one asks: np.power alone (Python's **
        # gives other bits for a quarter of t), the rest in Python floats, the same IEEE
        # operations; 0.9 us where the array path's five numpy calls took 2.7.
        return min(1.0, c / float(np.power(max(t, 1), 0.25)))
    return np.minimum(1.0, c / np.power(np.maximum(t, 1), 0.25))


@dataclass
class UnratedLedger:
    """Per model, what the SLA estimate needs about served answers with and without ratings.

    Most users never rate and ratings come late, yet the SLA is about every user. The
    satisfaction of the unrated answers is estimated with the difference estimator of
    survey sampling: each one counts at its predicted satisfaction p (taken when it was
    routed), corrected by its model's mean residual (rating - p) over the rated answers
    that model served. Which answers get rated does not depend on the answer, so the rated
    ones are a random sample of the served ones and the estimate is unbiased even though
    p itself is not: a router that picks the model a prompt looks easiest for overrates
    exactly the answers it serves, and the residual measures that on the same selection.

    All arrays are indexed by model; the live router keeps the same five sums per tenant
    and model in the database (db.sla_calibration) and replay keeps them in memory.
    """

    unrated: npt.NDArray[np.float64]
    unrated_predicted: npt.NDArray[np.float64]
    rated: npt.NDArray[np.float64]
    residual: npt.NDArray[np.float64]
    residual_squared: npt.NDArray[np.float64]

    @classmethod
    def empty(cls, n_models: int) -> UnratedLedger:
        return cls(*(np.zeros(n_models) for _ in range(5)))

    def serve(self, model: int, predicted: float) -> None:
        """A served answer starts unrated."""
        self.unrated[model] += 1
        self.unrated_predicted[model] += predicted

    def rate(self, model: int, predicted: float, satisfied: float) -> None:
        """Its rating arrived: it leaves the unrated and teaches the model's calibration."""
        self.unrated[model] -= 1
        self.unrated_predicted[model] -= predicted
        self.rated[model] += 1
        self.residual[model] += satisfied - predicted
        self.residual_squared[model] += (satisfied - predicted) ** 2

    def _residual_variance(self) -> npt.NDArray[np.float64]:
        """Per model, the mean squared residual, drawn towards the largest a rating has."""
        return (self.residual_squared + _PRIOR_RESIDUAL_VARIANCE * CALIBRATION_PRIOR_RATINGS) / (
            self.rated + CALIBRATION_PRIOR_RATINGS
        )

    def expected_satisfied(self) -> tuple[float, float]:
        """How many of the unrated answers satisfied, estimated, and that estimate's
        variance (from the calibration correction, which shrinks as ratings accumulate)."""
        weight = self.rated + CALIBRATION_PRIOR_RATINGS
        estimate = float(np.sum(self.unrated_predicted + self.unrated * self.residual / weight))
        return estimate, float(np.sum(self.unrated**2 * self._residual_variance() / weight))

    def satisfied_interval(self, z: float) -> tuple[float, float]:
        """A z-sigma interval for how many unrated answers did satisfy: the estimate's own
        doubt plus each unrated answer's yes-or-no chance around its expectation."""
        estimate, variance = self.expected_satisfied()
        variance += float(np.sum(self.unrated * self._residual_variance()))
        half = z * float(np.sqrt(variance))
        total = float(np.sum(self.unrated))
        return max(0.0, estimate - half), min(total, estimate + half)

    def debt(self, alpha: float, confidence: float) -> float:
        """Estimated SLA debt of the unrated answers, sum of (alpha - satisfaction), in
        answers, plus `confidence` standard errors of that estimate.

        With 20% of users rating, 1,000 answers carry about +-25 answers of doubt; asking
        for `confidence` of it buys a margin above alpha that shrinks, as a share, with
        every rating.
        """
        satisfied, variance = self.expected_satisfied()
        debt = float(np.sum(self.unrated)) * alpha - satisfied
        return debt + max(confidence, 0.0) * float(np.sqrt(variance))
