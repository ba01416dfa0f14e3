"""Every queue name, in one place: producers and consumers import these, never spell them."""

from __future__ import annotations

__all__ = ["FEEDBACK", "MODEL_PREFIX", "ROUTE", "TRAIN", "model_queue"]

ROUTE = "route"
FEEDBACK = "feedback"
TRAIN = "train"
MODEL_PREFIX = "model."


def model_queue(model_name: str) -> str:
    """The queue a zoo model's workers consume: one per model, so each scales on its own."""
    return f"{MODEL_PREFIX}{model_name}"
