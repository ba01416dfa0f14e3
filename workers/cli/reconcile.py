"""`messplus reconcile`: publish again the requests and ratings whose messages were lost."""

from __future__ import annotations

import argparse

from workers.cli import BROKER, DATABASE
from workers.cli._input import finite_float

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "reconcile",
        help="re-publish requests stuck in queued or routed and ratings not applied yet "
        "(lost messages)",
        description="Find requests untouched for longer than --older-than seconds (default "
        "MESSPLUS_STUCK_AFTER_S) and publish them again: queued ones to the router, routed "
        "ones to each model that still owes an answer; likewise ratings accepted but not yet "
        "applied, to the feedback workers. Safe to run at any time: every stage "
        "is idempotent. Beat also runs it every MESSPLUS_RECONCILE_EVERY_S seconds.",
    )
    command.add_argument("--older-than", type=finite_float, metavar="S", help="seconds untouched")
    command.set_defaults(func=_reconcile, uses=frozenset({DATABASE, BROKER}))


def _reconcile(args: argparse.Namespace) -> int:
    from workers import runtime
    from workers.cli import CliError
    from workers.cli._context import broker_errors, check_broker, database_errors, settings
    from workers.reconciler import reconcile

    config = settings()
    older_than = config.stuck_after_s if args.older_than is None else args.older_than
    if older_than < 0:
        raise CliError("--older-than must be >= 0")
    check_broker()  # else "re-published 0" would hide that nothing could be re-published
    with (
        database_errors(),
        broker_errors("some stuck requests may not have been re-published; run it again"),
    ):
        report = reconcile(runtime.sessions(), older_than, config.chunk_size)
    models = ", ".join(f"{m} {n}" for m, n in sorted(report.reinferred.items())) or "none"
    print(
        f"re-published {report.requeued} queued requests; answers owed by: {models}; "
        f"{report.ratings} pending ratings"
    )
    return 0
