"""`messplus feedback FILE.jsonl`: users' ratings of a tenant's answers.

A thin shell over workers.ratings.submit_ratings, with the rules of `submit`: all or
nothing, and every bad line of the file reported in one pass with its number, malformed
lines and lines naming no answer of the tenant's (unknown request or model, an answer that
does not exist or not yet) together. A rating that names an answer is stored before it is
sent, so once this command says so it reaches the tenant's SLA state.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from workers.cli import BROKER, DATABASE
from workers.cli._input import BadLine, check_lines, read_jsonl, refuse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    feedback = subparsers.add_parser(
        "feedback",
        help="send ratings of answers from a JSON-lines file",
        description='Each line is {"request_id": int, "satisfied": true|false} with an '
        'optional "model" (rate that model\'s answer; default: the answer served) and '
        'an optional "rated_at" (when the user rated, ISO 8601 with offset such as '
        "2026-12-01T09:30:00Z; default: now). Only answers that exist can be rated: a "
        "request that is not answered yet, failed, or was not answered by the model named "
        "is refused with the reason. All or nothing: every bad line is reported with its "
        "number and nothing is sent. Sending a rating again is harmless; of several "
        "ratings of one answer the one rated last wins (by rated_at, then by the order they "
        "were sent in), however late the others arrive. A tenant rates its own requests "
        "only: another tenant's request id is reported as unknown.",
    )
    feedback.add_argument("file", type=Path, metavar="FILE.jsonl")
    feedback.add_argument("--tenant", required=True, help="the tenant whose answers these rate")
    feedback.set_defaults(func=_feedback, uses=frozenset({DATABASE, BROKER}))


def _feedback(args: argparse.Namespace) -> int:
    from db.models import utcnow
    from db.tenants import get_tenant_by_name
    from workers import runtime
    from workers.cli._context import (
        broker_errors,
        check_broker,
        database_errors,
        settings,
        transaction,
    )
    from workers.ratings import RatingsRefused, parse_rating, refusals, submit_ratings

    config = settings()
    now = utcnow()
    values, bad = read_jsonl(args.file, config.max_file_bytes)
    lines = check_lines(values, lambda value: parse_rating(value, now), bad)
    with transaction() as session:
        tenant_id = get_tenant_by_name(session, args.tenant).id
    ratings = [rating for _, rating in lines]
    # Lines naming no answer are reported with the malformed ones, before the broker is
    # needed; submit_ratings checks again, in the transaction that stores them.
    with database_errors():
        bad += _at_lines(lines, refusals(runtime.sessions(), tenant_id, ratings))
    refuse(args.file, bad, "nothing sent")
    check_broker()
    try:
        with (
            database_errors(),
            broker_errors(
                f"the {len(ratings)} ratings are stored: `messplus reconcile` (or beat, every "
                "minute) sends them once the broker is back"
            ),
        ):
            accepted = submit_ratings(runtime.sessions(), tenant_id, ratings, config.chunk_size)
    except RatingsRefused as refused:
        refuse(args.file, _at_lines(lines, refused.bad), "nothing sent")
        raise
    print(f"{len(accepted.rating_ids)} ratings stored and sent in {accepted.messages} messages")
    return 0


def _at_lines(lines: Sequence[tuple[int, object]], bad: list[tuple[int, str]]) -> list[BadLine]:
    """Refusals by position in the batch, as the file's line numbers."""
    return [BadLine(lines[position][0], reason) for position, reason in bad]
