"""The SLA's virtual queue and the exploration schedule of MESS+.

The virtual queue Q is the Lyapunov device that turns the long-run constraint
"mean satisfaction >= alpha" into a per-request price: every unsatisfied answer adds
(alpha - 0) to Q, every satisfied one removes (1 - alpha), and Q never goes below zero.
While Q is high the decision pays more for capable models; when the SLA is ahead Q drains
and cheap models win again.
"""

from __future__ import annotations

import numpy as np

__all__ = ["advance_queue", "exploration_probability", "validate_alpha"]


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
    return np.minimum(1.0, c / np.power(np.maximum(t, 1), 0.25))
