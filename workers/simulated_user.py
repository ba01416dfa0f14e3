"""A simulated user for the replay zoo: rates answers with the zoo's own verdicts.

The local Triton replay zoo tells, with every answer, whether it would satisfy the user
(the data set's label). The simulated user reads newly stored answers and rates them,
served and explored alike, through the same way in real users use (workers.ratings); with
`share` < 1 it rates only that share of requests (sparse feedback), chosen per request
by a stable hash so every model's answer to a rated request is rated together.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Feedback, Request, Response, ZooModel, utcnow
from db.pending_ratings import SubmittedRating
from workers.ratings import submit_ratings

__all__ = ["SimulatedUser"]


@dataclass
class SimulatedUser:
    """Rates every stored answer it has not seen yet.

    Answers are found by what the user has already seen, not by an id cursor: a database
    hands out ids when rows are inserted, not when their transactions commit, so an answer
    with a lower id can become visible after higher ones (an explored request's answers
    come from three model workers at once) and a cursor would skip it for good.
    """

    sessions: sessionmaker[Session]
    share: float = 1.0
    seen: set[int] = field(default_factory=set)

    def wants_to_rate(self, request_id: int) -> bool:
        return zlib.crc32(request_id.to_bytes(8, "little")) / 2**32 < self.share

    def new_ratings(self, limit: int = 10_000) -> dict[int, list[SubmittedRating]]:
        """Ratings of the answers stored since the last call, by tenant id."""
        with self.sessions.begin() as session:
            rated = select(Feedback.id).where(
                Feedback.request_id == Response.request_id, Feedback.model_id == Response.model_id
            )
            rows = session.execute(
                select(
                    Response.id,
                    Request.tenant_id,
                    Response.request_id,
                    ZooModel.name,
                    Response.would_satisfy,
                )
                .join(ZooModel, ZooModel.id == Response.model_id)
                .join(Request, Request.id == Response.request_id)
                .where(Response.would_satisfy.is_not(None), ~rated.exists())
                .order_by(Response.id)
            ).all()
        fresh = [row for row in rows if row[0] not in self.seen][:limit]
        self.seen.update(row[0] for row in fresh)
        now = utcnow()
        by_tenant: dict[int, list[SubmittedRating]] = defaultdict(list)
        for _, tenant_id, request_id, model, satisfied in fresh:
            if self.wants_to_rate(request_id):
                by_tenant[tenant_id].append(
                    SubmittedRating(request_id, bool(satisfied), model, now)
                )
        return dict(by_tenant)

    def rate_new(self, chunk_size: int, limit: int = 10_000) -> int:
        """Submit the ratings of the answers stored since the last call; returns how many."""
        submitted = 0
        for tenant_id, ratings in sorted(self.new_ratings(limit).items()):
            submit_ratings(self.sessions, tenant_id, ratings, chunk_size)
            submitted += len(ratings)
        return submitted
