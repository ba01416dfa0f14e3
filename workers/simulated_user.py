"""A simulated user for the replay zoo: rates answers with the zoo's own verdicts.

The local Triton replay zoo tells, with every answer, whether it would satisfy the user
(the data set's label). The simulated user reads newly stored answers and rates them,
served and explored alike, through the same feedback queue real users use; with
`share` < 1 it rates only that share of requests (sparse feedback), chosen per request
by a stable hash so every model's answer to a rated request is rated together.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Response, ZooModel
from workers.messages import RatingMessage

__all__ = ["SimulatedUser"]


@dataclass
class SimulatedUser:
    """Rates every answer stored after the last one it saw."""

    sessions: sessionmaker[Session]
    share: float = 1.0
    last_response_id: int = 0

    def wants_to_rate(self, request_id: int) -> bool:
        return zlib.crc32(request_id.to_bytes(8, "little")) / 2**32 < self.share

    def new_ratings(self, limit: int = 10_000) -> list[RatingMessage]:
        with self.sessions.begin() as session:
            rows = session.execute(
                select(Response.id, Response.request_id, ZooModel.name, Response.would_satisfy)
                .join(ZooModel, ZooModel.id == Response.model_id)
                .where(Response.id > self.last_response_id, Response.would_satisfy.is_not(None))
                .order_by(Response.id)
                .limit(limit)
            ).all()
        if rows:
            self.last_response_id = rows[-1][0]
        return [
            RatingMessage(request_id, bool(satisfied), model)
            for _, request_id, model, satisfied in rows
            if self.wants_to_rate(request_id)
        ]
