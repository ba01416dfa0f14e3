"""`messplus metrics serve`: the Prometheus endpoint of one host's workers and of the SLAs.

Run one per host, beside the workers, with the workers' MESSPLUS_METRICS_DIR: it adds up
what every worker process on the host wrote there (solo and prefork pools alike, dead
processes included) and reads each tenant's SLA figures from the database on every
scrape. workers/metrics.py says why this beats a port in every worker.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workers.cli import DATABASE, CliError
from workers.cli._input import positive_int, tcp_port

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    metrics = subparsers.add_parser("metrics", help="Prometheus metrics of workers and SLAs")
    commands = metrics.add_subparsers(dest="metrics_command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve /metrics: this host's workers (MESSPLUS_METRICS_DIR) and the SLA figures",
        description="Serve Prometheus metrics over HTTP until interrupted: the figures every "
        "worker process on this host writes to MESSPLUS_METRICS_DIR (routed and explored "
        "requests, routing and Triton latency, errors, retries, failures, predictor version "
        "in use), and each tenant's alpha, virtual queue and satisfaction, read from the "
        "database at every scrape.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    serve.add_argument(
        "--port",
        type=tcp_port,
        metavar="N",
        help="port to listen on (default MESSPLUS_METRICS_PORT, 9464; 0 picks a free one)",
    )
    serve.add_argument(
        "--window",
        type=positive_int,
        metavar="N",
        help="satisfaction scope=window covers the last N rated answers (default 1000)",
    )
    serve.set_defaults(func=_serve, uses=frozenset({DATABASE}))


def _serve(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from db.sla_report import DEFAULT_WINDOW
    from workers import runtime
    from workers.cli._context import settings
    from workers.metrics import exporter_registry

    config = settings()
    port = config.metrics_port if args.port is None else args.port
    directory = None if config.metrics_dir is None else Path(config.metrics_dir)
    registry = exporter_registry(runtime.sessions(), directory, args.window or DEFAULT_WINDOW)
    try:
        server, thread = start_http_server(port, addr=args.host, registry=registry)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{port}: {exc.strerror or exc}") from None
    if directory is None:
        print(
            "messplus: MESSPLUS_METRICS_DIR is unset: serving the database figures only "
            "(workers keep their counts in memory)",
            file=sys.stderr,
        )
    print(f"serving metrics on http://{args.host}:{server.server_port}/metrics", flush=True)
    thread.join()
    return 0
