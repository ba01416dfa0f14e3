"""`messplus feedback FILE.jsonl`: send users' ratings to the feedback workers.

Like `submit`, all or nothing: every line is parsed with the same RatingMessage the
feedback worker uses, and every request id and model name is looked up in the database
first. A rating that names an unknown request would otherwise only surface later as a dead
letter the user never sees.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workers.cli._input import BadLine, check_lines, read_jsonl, refuse

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from workers.messages import RatingMessage

__all__ = ["register"]

# Ids per lookup query: far below the bound-parameter limits of SQLite and Postgres.
LOOKUP_CHUNK = 1000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    feedback = subparsers.add_parser(
        "feedback",
        help="send ratings of answers from a JSON-lines file",
        description='Each line is {"request_id": int, "satisfied": true|false} with an '
        'optional "model" (rate that model\'s answer; default: the answer served). All or '
        "nothing: if any line is malformed or names a request id or model not in the "
        "database, each bad line is reported with its number and nothing is sent. Sending "
        "a rating again is harmless; a different rating replaces the earlier one. A tenant "
        "rates its own requests only: another tenant's request id is reported as unknown.",
    )
    feedback.add_argument("file", type=Path, metavar="FILE.jsonl")
    feedback.add_argument("--tenant", required=True, help="the tenant whose answers these rate")
    feedback.set_defaults(func=_feedback)


def _feedback(args: argparse.Namespace) -> int:
    from db.tenants import get_tenant_by_name
    from workers.cli._context import broker_errors, check_broker, settings, transaction
    from workers.messages import RatingMessage
    from workers.publish import publish_feedback

    config = settings()
    values, bad = read_jsonl(args.file, config.max_file_bytes)
    ratings = check_lines(values, RatingMessage.parse, bad)
    refuse(args.file, bad, "nothing sent")
    with transaction() as session:
        tenant_id = get_tenant_by_name(session, args.tenant).id
        bad = _unknown_references(session, ratings, tenant_id)
    refuse(args.file, bad, "nothing sent")
    check_broker()
    with broker_errors("sending stopped part-way; sending the whole file again is safe"):
        sent = publish_feedback(
            [rating for _, rating in ratings], config.chunk_size, tenant=args.tenant
        )
    print(f"{len(ratings)} ratings sent in {sent} messages")
    return 0


def _unknown_references(
    session: Session, ratings: Sequence[tuple[int, RatingMessage]], tenant_id: int
) -> list[BadLine]:
    """A BadLine for every rating naming a request id of no request of this tenant (so
    another tenant's requests look exactly like missing ones), or an unknown model."""
    from sqlalchemy import select

    from db.models import Request
    from db.zoo import list_models

    wanted = sorted({rating.request_id for _, rating in ratings})
    found: set[int] = set()
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        part = wanted[start : start + LOOKUP_CHUNK]
        found.update(
            session.scalars(
                select(Request.id).where(Request.id.in_(part), Request.tenant_id == tenant_id)
            )
        )
    models = {model.name for model in list_models(session)}
    bad = [
        BadLine(line, f"unknown request id {rating.request_id}")
        for line, rating in ratings
        if rating.request_id not in found
    ]
    bad += [
        BadLine(line, f"unknown model {rating.model!r}")
        for line, rating in ratings
        if rating.model is not None and rating.model not in models
    ]
    return bad
