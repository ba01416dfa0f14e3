"""`messplus report (--job J [--tenant T] | --tenant T [--since WHEN]) -o DIR`.

An HTML page with PNG plots of how an SLA was kept and what it cost: running satisfaction
against alpha, the virtual queue, cumulative cost, the model mix over time and the
calibration of the router's predictions, with the per-model table behind them
(workers.report says what each shows). It reads the database only, in one transaction,
and takes no locks, so it is safe while routers are busy.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workers.cli import DATABASE, CliError
from workers.cli._input import point_in_time

__all__ = ["register", "report_dir_errors"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = subparsers.add_parser(
        "report",
        help="an HTML report with plots of a job, or of a tenant's requests since a time",
        description="Write DIR/index.html with PNG plots next to it (running satisfaction vs "
        "alpha, virtual queue, cumulative cost, model mix over time, calibration of the "
        "predictions) and the per-model table, also as DIR/table.csv. Covers the routed "
        "requests of one job, or those a tenant submitted since WHEN (or ever).",
    )
    report.add_argument("--job", metavar="J", help="report this job")
    report.add_argument(
        "--tenant", metavar="T", help="the tenant (with --job: the job must be T's)"
    )
    report.add_argument(
        "--since",
        metavar="WHEN",
        help="with --tenant: requests submitted since WHEN, an ISO 8601 time with a UTC "
        "offset (2025-03-01T12:00Z) or a duration ago (90m, 24h, 7d)",
    )
    report.add_argument(
        "-o", "--out", dest="out_dir", type=Path, required=True, metavar="DIR", help="output"
    )
    report.set_defaults(func=_report, uses=frozenset({DATABASE}))


@contextmanager
def report_dir_errors(out_dir: Path) -> Iterator[None]:
    """A directory the report cannot be written to, as one error line."""
    try:
        yield
    except OSError as exc:
        raise CliError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None


def _report(args: argparse.Namespace) -> int:
    from db.report_data import count_routed, job_scope, tenant_scope
    from workers.cli._context import transaction
    from workers.progress import progress_bar
    from workers.report import gather, prepare_directory, write_report

    if args.job is None and args.tenant is None:
        raise CliError("say what to report: --job J, or --tenant T [--since WHEN]")
    if args.job is not None and args.since is not None:
        raise CliError("--since selects a tenant's requests and does not combine with --job")
    since = None
    if args.since is not None:
        try:
            since = point_in_time(args.since, dt.datetime.now(dt.UTC))
        except ValueError as exc:
            raise CliError(f"--since: {exc}") from None
    with transaction() as session:
        if args.job is not None:
            scope = job_scope(session, args.job, args.tenant)
        else:
            scope = tenant_scope(session, args.tenant, since)
        routed = count_routed(session, scope)
        if routed == 0:
            raise CliError(
                f"nothing to report: no routed requests for tenant {scope.tenant!r} "
                f"({scope.describe()})"
            )
        # Checked before the long read, so a typo in -o fails at once.
        with report_dir_errors(args.out_dir):
            prepare_directory(args.out_dir)
        with progress_bar(routed, "reading", "req", delay=1.0, leave=False) as bar:
            data = gather(session, scope, bar.update)
    with report_dir_errors(args.out_dir):
        write_report(data, args.out_dir)
    print(f"report of {routed:,} routed requests written to {args.out_dir / 'index.html'}")
    return 0
