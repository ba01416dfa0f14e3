"""Messages no worker could process, kept for inspection instead of being dropped."""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.models import DeadLetter

__all__ = ["PAYLOAD_LIMIT", "record_dead_letter"]

# A poison message can be arbitrarily large; the head is enough to diagnose it.
PAYLOAD_LIMIT = 64 * 1024


def record_dead_letter(session: Session, queue: str, payload: str, reason: str) -> int:
    """Store a rejected message (payload cut to PAYLOAD_LIMIT characters); returns its id.

    NUL characters and unpaired surrogates are written as escapes (\\x00, \\ud800): Postgres
    text cannot hold them, and a poison message must never fail its own dead letter.
    """
    if len(payload) > PAYLOAD_LIMIT:
        payload = f"{payload[:PAYLOAD_LIMIT]}... [truncated {len(payload) - PAYLOAD_LIMIT} chars]"
    letter = DeadLetter(queue=queue[:200], payload=_storable(payload), reason=_storable(reason))
    session.add(letter)
    session.flush()
    return letter.id


def _storable(text: str) -> str:
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
