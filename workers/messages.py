"""Task payloads: small JSON objects carrying ids, parsed strictly.

Tasks receive plain JSON (never pickle) and turn it into these frozen dataclasses first;
unknown keys, wrong types, empty or oversized chunks raise MessageError, which the task
turns into a dead letter instead of crashing or retrying forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_ID",
    "FeedbackChunk",
    "InferChunk",
    "MessageError",
    "RouteChunk",
    "TrainRequest",
    "is_id",
    "json_object",
    "name_field",
]

MAX_IDS_PER_MESSAGE = 10_000
# Ids are 64-bit in Postgres: a larger one would fail the query instead of matching nothing.
MAX_ID = 2**63 - 1


class MessageError(ValueError):
    """A payload that can never be processed; the reason goes into the dead letter."""


def json_object(payload: object, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
    """`payload` as an object with only `allowed` keys and every `required` one."""
    if not isinstance(payload, Mapping):
        raise MessageError(f"payload must be a JSON object, got {type(payload).__name__}")
    unknown = set(payload) - allowed
    if unknown:
        raise MessageError(f"unknown keys {sorted(unknown)}")
    missing = required - set(payload)
    if missing:
        raise MessageError(f"missing keys {sorted(missing)}")
    return payload


def is_id(value: object) -> bool:
    """A row id: a positive integer that fits the 64-bit columns (booleans are not ids)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def _ids(value: object, what: str = "request_ids") -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise MessageError(f"{what} must be a non-empty list")
    if len(value) > MAX_IDS_PER_MESSAGE:
        raise MessageError(f"{what} has {len(value)} ids, at most {MAX_IDS_PER_MESSAGE}")
    if not all(map(is_id, value)):
        raise MessageError(f"{what} must be positive integers below 2**63")
    return tuple(value)


def name_field(value: object, what: str) -> str:
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
        body = json_object(payload, {"request_ids"}, {"request_ids"})
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
        body = json_object(payload, {"model", "request_ids"}, {"model", "request_ids"})
        return cls(name_field(body["model"], "model"), _ids(body["request_ids"]))

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "request_ids": list(self.request_ids)}


@dataclass(frozen=True)
class FeedbackChunk:
    """Ratings stored as pending (db.pending_ratings) for the feedback worker to apply.

    Ids, not ratings: a rating is checked against the answers that exist and stored when
    it is submitted, so the broker carries nothing a forged message could add, and a lost
    message loses no rating (the reconciler publishes pending ids again).
    """

    rating_ids: tuple[int, ...]

    @classmethod
    def parse(cls, payload: object) -> FeedbackChunk:
        body = json_object(payload, {"rating_ids"}, {"rating_ids"})
        return cls(_ids(body["rating_ids"], "rating_ids"))

    def to_json(self) -> dict[str, Any]:
        return {"rating_ids": list(self.rating_ids)}


@dataclass(frozen=True)
class TrainRequest:
    """Ask the trainer for a new predictor version."""

    dry_run: bool = False

    @classmethod
    def parse(cls, payload: object) -> TrainRequest:
        body = json_object(payload, {"dry_run"}, set())
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise MessageError("dry_run must be true or false")
        return cls(dry_run)

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run}
