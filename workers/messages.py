"""Task payloads: small JSON objects carrying ids, parsed strictly.

Tasks receive plain JSON (never pickle) and turn it into these frozen dataclasses first;
unknown keys, wrong types, empty or oversized chunks raise MessageError, which the task
turns into a dead letter instead of crashing or retrying forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "FeedbackChunk",
    "InferChunk",
    "MessageError",
    "RatingMessage",
    "RouteChunk",
    "TrainRequest",
]

MAX_IDS_PER_MESSAGE = 10_000


class MessageError(ValueError):
    """A payload that can never be processed; the reason goes into the dead letter."""


def _object(payload: object, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise MessageError(f"payload must be a JSON object, got {type(payload).__name__}")
    unknown = set(payload) - allowed
    if unknown:
        raise MessageError(f"unknown keys {sorted(unknown)}")
    missing = required - set(payload)
    if missing:
        raise MessageError(f"missing keys {sorted(missing)}")
    return payload


def _ids(value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise MessageError("request_ids must be a non-empty list")
    if len(value) > MAX_IDS_PER_MESSAGE:
        raise MessageError(f"request_ids has {len(value)} ids, at most {MAX_IDS_PER_MESSAGE}")
    if not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in value):
        raise MessageError("request_ids must be positive integers")
    return tuple(value)


def _name(value: object, what: str) -> str:
    """A name the database can look up: NUL or an unpaired surrogate would fail the query
    itself (and put the name into the error logged), so they are the message's fault."""
    if not isinstance(value, str) or not value or len(value) > 200:
        raise MessageError(f"{what} must be a non-empty string of at most 200 characters")
    if "\x00" in value or not _encodable(value):
        raise MessageError(f"{what} contains a NUL character or an unpaired surrogate")
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class RouteChunk:
    """Requests for the router to decide, in submission order."""

    request_ids: tuple[int, ...]

    @classmethod
    def parse(cls, payload: object) -> RouteChunk:
        body = _object(payload, {"request_ids"}, {"request_ids"})
        return cls(_ids(body["request_ids"]))

    def to_json(self) -> dict[str, Any]:
        return {"request_ids": list(self.request_ids)}


@dataclass(frozen=True)
class InferChunk:
    """Requests one zoo model must answer."""

    model: str
    request_ids: tuple[int, ...]

    @classmethod
    def parse(cls, payload: object) -> InferChunk:
        body = _object(payload, {"model", "request_ids"}, {"model", "request_ids"})
        return cls(_name(body["model"], "model"), _ids(body["request_ids"]))

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "request_ids": list(self.request_ids)}


@dataclass(frozen=True)
class RatingMessage:
    """A user's verdict on a request's answer; model None means the served answer."""

    request_id: int
    satisfied: bool
    model: str | None = None

    @classmethod
    def parse(cls, payload: object) -> RatingMessage:
        body = _object(payload, {"request_id", "satisfied", "model"}, {"request_id", "satisfied"})
        request_id, satisfied = body["request_id"], body["satisfied"]
        if not isinstance(request_id, int) or isinstance(request_id, bool) or request_id < 1:
            raise MessageError("request_id must be a positive integer")
        if not isinstance(satisfied, bool):
            raise MessageError("satisfied must be true or false")
        model = body.get("model")
        return cls(request_id, satisfied, None if model is None else _name(model, "model"))


@dataclass(frozen=True)
class FeedbackChunk:
    """Ratings to store, in the order they were given.

    `tenant` names whose answers they rate: the feedback worker then stores none that rates
    another tenant's request, so a client rating for one tenant cannot touch another's SLA
    even on the queue. Without it (trusted internal senders) any request may be rated.
    """

    ratings: tuple[RatingMessage, ...]
    tenant: str | None = None

    @classmethod
    def parse(cls, payload: object) -> FeedbackChunk:
        body = _object(payload, {"ratings", "tenant"}, {"ratings"})
        ratings = body["ratings"]
        if not isinstance(ratings, list) or not ratings:
            raise MessageError("ratings must be a non-empty list")
        if len(ratings) > MAX_IDS_PER_MESSAGE:
            raise MessageError(f"{len(ratings)} ratings, at most {MAX_IDS_PER_MESSAGE}")
        tenant = body.get("tenant")
        return cls(
            tuple(RatingMessage.parse(r) for r in ratings),
            None if tenant is None else _name(tenant, "tenant"),
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ratings": [{k: v for k, v in asdict(r).items() if v is not None} for r in self.ratings]
        }
        if self.tenant is not None:
            body["tenant"] = self.tenant
        return body


@dataclass(frozen=True)
class TrainRequest:
    """Ask the trainer for a new predictor version."""

    dry_run: bool = False

    @classmethod
    def parse(cls, payload: object) -> TrainRequest:
        body = _object(payload, {"dry_run"}, set())
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise MessageError("dry_run must be true or false")
        return cls(dry_run)

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run}
