"""`messplus sla [--tenant T] [--window N | --since TIME] [--json]`: is each SLA being met?

`messplus tenants list` shows the running counters; this command reads the ratings
themselves (db.sla_report) to add what an operator decides on: a 95% interval around each
share, the recent trend, and a status that tells a met SLA from one that only looks met.
It reads the database only and takes no locks, so it is safe while routers are busy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from workers.cli import DATABASE
from workers.cli._input import point_in_time, positive_int
from workers.cli._table import print_table

if TYPE_CHECKING:
    from db.sla_report import Estimate, ServedEstimate, SlaReport

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sla = subparsers.add_parser(
        "sla",
        help="each tenant's satisfaction against its SLA, with 95%% intervals",
        description="Satisfaction of rated served answers per tenant, since the start and over "
        "a recent window, each as share [95% Wilson interval] and the number of rated answers "
        "behind it; then the estimate over every served answer, rated or not (unrated ones "
        "at their calibrated predicted satisfaction). Status (from the since-start share): "
        "met (the interval's lower bound reaches alpha), at risk (only the share does), "
        "missed, or no ratings.",
    )
    sla.add_argument("--tenant", help="report this tenant only (default: every tenant)")
    window = sla.add_mutually_exclusive_group()
    window.add_argument(
        "--window",
        type=positive_int,
        metavar="N",
        help="the window is the last N rated answers (default 1000)",
    )
    window.add_argument(
        "--since",
        type=_aware_time,
        metavar="TIME",
        help="the window is the answers rated since TIME (ISO 8601 with a UTC offset, or a "
        "duration ago: 90m, 24h, 7d)",
    )
    sla.add_argument("--json", action="store_true", help="print one JSON array only")
    sla.set_defaults(func=_sla, uses=frozenset({DATABASE}))


def _aware_time(raw: str) -> dt.datetime:
    """An argparse type: an ISO 8601 time with its offset, or a duration ago."""
    try:
        return point_in_time(raw, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sla(args: argparse.Namespace) -> int:
    from db.sla_report import DEFAULT_WINDOW, sla_report
    from db.tenants import get_tenant_by_name, list_tenants
    from workers.cli._context import transaction

    window = args.window or DEFAULT_WINDOW
    with transaction() as session:
        tenants = (
            [get_tenant_by_name(session, args.tenant)] if args.tenant else list_tenants(session)
        )
        reports = [sla_report(session, t, window=window, since=args.since) for t in tenants]
    if args.json:
        print(json.dumps([_document(report) for report in reports]))
        return 0
    if not reports:
        print("no tenants (add one with `messplus tenants add NAME --alpha A`)")
        return 0
    recent = f"last {window}" if args.since is None else f"since {args.since.isoformat()}"
    header = (
        "tenant",
        "alpha",
        "since start [95% CI]",
        "n",
        f"{recent} [95% CI]",
        "n",
        "all served, estimated [95%]",
        "served",
        "status",
    )
    rows = [
        (
            report.tenant,
            f"{report.alpha:g}",
            _cell(report.since_start),
            str(report.since_start.rated),
            _cell(report.window),
            str(report.window.rated),
            _cell(report.all_served),
            str(report.all_served.served),
            report.status,
        )
        for report in reports
    ]
    print_table(header, rows)
    return 0


def _cell(estimate: Estimate | ServedEstimate) -> str:
    if estimate.satisfaction is None:
        return "-"
    return f"{estimate.satisfaction:.4f} [{estimate.lower:.4f}, {estimate.upper:.4f}]"


def _document(report: SlaReport) -> dict[str, Any]:
    window: dict[str, Any] = asdict(report.window)
    if report.window_since is None:
        window["size"] = report.window_size
    else:
        window["since"] = report.window_since.isoformat()
    return {
        "tenant": report.tenant,
        "alpha": report.alpha,
        "status": report.status,
        "since_start": asdict(report.since_start),
        "window": window,
        "all_served": asdict(report.all_served),
    }
