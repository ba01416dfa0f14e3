"""What the router decided for one request: the record both the live router and replay keep."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Decision"]


@dataclass(slots=True)
class Decision:
    """What the router does with one request.

    served: the model whose answer the user receives; queried: every model called (when
    exploring, every model of the zoo up to the served one in the zoo's order, so the
    predictor gets their labels side by side); probabilities: the
    predicted satisfaction of each model the decision was based on; queue: the virtual queue
    it was taken at, and queue_shift the integral action added to it for the decision
    (router.messplus.advance_shift).
    """

    served: int
    queried: tuple[int, ...]
    explored: bool
    probabilities: npt.NDArray[np.float64]
    queue: float
    queue_shift: float = 0.0
