"""Taking users' ratings in: parse them, check them against the answers that exist, store
them in the order given, and publish them to the feedback workers.

Every way ratings come in (`messplus feedback`, the simulated user, an HTTP front door)
goes through `submit_ratings`, so every one gets the same rules:

- All or nothing: a batch with any rating that names no answer of the tenant's (an
  unknown or another tenant's request, an unknown model, an answer that was never given
  or not yet) is refused whole, each bad rating with its position and reason, and nothing
  is stored or sent. Only existing answers are rated, so a rating can never land on a
  request that later fails, nor teach the routers about a model that never saw the prompt.
- Ordered: each rating carries when the user rated (`rated_at`, by default the moment of
  submitting) and gets an id in submission order; the newest rating of an answer wins
  however late the others are delivered.
- Never silently lost: the batch is stored in Postgres before anything is published, so a
  rating the caller was told is accepted reaches the SLA state even if the broker loses
  its message (the reconciler publishes pending ratings again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from db.pending_ratings import SubmittedRating, check_ratings, store_ratings
from workers.messages import MessageError, is_id, json_object, name_field
from workers.publish import publish_feedback

__all__ = [
    "MAX_FUTURE_S",
    "Accepted",
    "RatingsRefused",
    "SubmittedRating",
    "parse_rating",
    "refusals",
    "submit_ratings",
]

# How far ahead of this machine's clock a rating's time may be (clocks drift); a rating
# dated further ahead would outrank every later change of mind.
MAX_FUTURE_S = 300.0
_KEYS = {"request_id", "satisfied", "model", "rated_at"}


class RatingsRefused(ValueError):
    """A batch with ratings that name no answer of the tenant's; nothing was stored.

    `bad` holds (position in the batch, reason) for each, in batch order.
    """

    def __init__(self, bad: Sequence[tuple[int, str]]) -> None:
        self.bad = list(bad)
        first = f"rating {self.bad[0][0] + 1}: {self.bad[0][1]}" if self.bad else "none"
        super().__init__(f"{len(self.bad)} rating(s) refused, first {first}")


@dataclass(frozen=True)
class Accepted:
    """A stored batch: its pending rating ids (submission order) and the messages sent."""

    rating_ids: list[int]
    messages: int


def _rated_at(value: object, now: dt.datetime) -> dt.datetime:
    if not isinstance(value, str):
        raise MessageError("rated_at must be an ISO 8601 time with offset, e.g. 2026-12-01T09:30Z")
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise MessageError(
            f"rated_at is not an ISO 8601 time (2026-12-01T09:30Z): {value[:40]!r}"
        ) from None
    if when.tzinfo is None:
        raise MessageError("rated_at has no UTC offset (add Z or +HH:MM)")
    if when > now + dt.timedelta(seconds=MAX_FUTURE_S):
        raise MessageError(f"rated_at is more than {MAX_FUTURE_S:.0f} s in the future")
    return when.astimezone(dt.UTC)


def parse_rating(value: object, now: dt.datetime) -> SubmittedRating:
    """One rating as a client sends it: {"request_id": id, "satisfied": true|false} with an
    optional "model" (rate that model's answer; default the answer served) and "rated_at"
    (when the user rated, ISO 8601 with offset; default `now`, the moment of submitting).

    Raises MessageError (a ValueError) naming the problem.
    """
    body = json_object(value, _KEYS, {"request_id", "satisfied"})
    request_id, satisfied = body["request_id"], body["satisfied"]
    if not is_id(request_id):
        raise MessageError("request_id must be a positive integer below 2**63")
    if not isinstance(satisfied, bool):
        raise MessageError("satisfied must be true or false")
    model = body.get("model")
    rated_at = body.get("rated_at")
    return SubmittedRating(
        request_id,
        satisfied,
        None if model is None else name_field(model, "model"),
        now if rated_at is None else _rated_at(rated_at, now),
    )


def refusals(
    sessions: sessionmaker[Session], tenant_id: int, ratings: Sequence[SubmittedRating]
) -> list[tuple[int, str]]:
    """(position, reason) for every rating submit_ratings would refuse; stores nothing.

    For a client that reports a batch's format errors and its unknown answers together."""
    with sessions.begin() as session:
        return check_ratings(session, tenant_id, ratings)[1]


def submit_ratings(
    sessions: sessionmaker[Session],
    tenant_id: int,
    ratings: Sequence[SubmittedRating],
    chunk_size: int,
) -> Accepted:
    """Check every rating against the tenant's answers, store them all in the order given,
    then publish their ids in chunks.

    Raises RatingsRefused, storing nothing, if any rating names no answer of the tenant's.
    Once stored, a broker that cannot be reached raises kombu's OperationalError: the
    ratings are kept and the reconciler publishes them when it next runs.
    """
    with sessions.begin() as session:
        model_ids, bad = check_ratings(session, tenant_id, ratings)
        if bad:
            raise RatingsRefused(bad)
        rating_ids = store_ratings(session, tenant_id, ratings, model_ids)
    return Accepted(rating_ids, publish_feedback(rating_ids, chunk_size))
