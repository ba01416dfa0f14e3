"""Sending work to the queues: what clients and tasks publish, in chunks of ids."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from workers import queues
from workers.messages import FeedbackChunk, InferChunk, RouteChunk

__all__ = ["chunks", "publish_feedback", "publish_infer", "publish_route"]

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def publish_route(request_ids: Sequence[int], chunk_size: int) -> int:
    """Queue requests for routing; returns the number of messages sent."""
    from workers.tasks import route

    sent = 0
    for part in chunks(request_ids, chunk_size):
        route.apply_async(args=[RouteChunk(tuple(part)).to_json()], queue=queues.ROUTE)
        sent += 1
    return sent


def publish_infer(model: str, request_ids: Sequence[int], chunk_size: int) -> int:
    from workers.tasks import infer

    sent = 0
    for part in chunks(request_ids, chunk_size):
        message = InferChunk(model, tuple(part)).to_json()
        infer.apply_async(args=[message], queue=queues.model_queue(model))
        sent += 1
    return sent


def publish_feedback(rating_ids: Sequence[int], chunk_size: int) -> int:
    """Send stored pending ratings (workers.ratings) to the feedback workers."""
    from workers.tasks import feedback

    sent = 0
    for part in chunks(rating_ids, chunk_size):
        feedback.apply_async(args=[FeedbackChunk(tuple(part)).to_json()], queue=queues.FEEDBACK)
        sent += 1
    return sent
