"""Dead letters keep the head of a poison message, never an unbounded payload."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from db.dead_letters import PAYLOAD_LIMIT, record_dead_letter
from db.models import DeadLetter


def test_dead_letters_are_stored_and_truncated(sessions: sessionmaker[Session]) -> None:
    huge = "x" * (PAYLOAD_LIMIT + 10)
    with sessions.begin() as session:
        small_id = record_dead_letter(session, "route", '{"ids": [1]}', "bad payload")
        huge_id = record_dead_letter(session, "feedback", huge, "too big")
    with sessions.begin() as session:
        small = session.get(DeadLetter, small_id)
        big = session.get(DeadLetter, huge_id)
        assert small is not None and big is not None
        assert (small.queue, small.payload, small.reason) == (
            "route",
            '{"ids": [1]}',
            "bad payload",
        )
        assert big.payload.startswith("x" * PAYLOAD_LIMIT)
        assert big.payload.endswith("[truncated 10 chars]")
        assert small.created_at.tzinfo is not None
