"""`messplus health [--this-host] [--timeout S]`: ask every worker whether it can do its
work, for operators and for container health checks.

Each worker answers with the queues it consumes and its problems (workers.health): a
model worker whose Triton no longer serves its model says so. Status 0 when at least one
worker answered and none reports a problem, 1 otherwise, as health checks expect.
"""

from __future__ import annotations

import argparse
import socket

from workers.cli import BROKER, CliError
from workers.cli._input import finite_float

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    health = subparsers.add_parser(
        "health",
        help="ask every worker whether it can do its work",
        description="One line per worker that answers within --timeout: its node name, the "
        "queues it consumes, and ok or what keeps it from serving them (a model worker "
        "checks that Triton still serves its model). Status 0 when at least one worker "
        "answered and all are ok, else 1. A worker busy with a long task in a solo pool "
        "answers after it.",
    )
    health.add_argument(
        "--timeout",
        type=finite_float,
        default=2.0,
        metavar="S",
        help="seconds to wait for answers (default %(default)s)",
    )
    health.add_argument(
        "--this-host",
        action="store_true",
        help="only the workers running on this host (a container's own health check)",
    )
    health.set_defaults(func=_health, uses=frozenset({BROKER}))


def _health(args: argparse.Namespace) -> int:
    from workers.cli._context import broker_errors, check_broker
    from workers.health import ask_workers

    if args.timeout <= 0:
        raise CliError(f"--timeout must be > 0, got {args.timeout:g}")
    check_broker()
    with broker_errors("no worker was asked"):
        workers = ask_workers(args.timeout)
    if args.this_host:
        host = socket.gethostname()
        workers = [w for w in workers if w.node.rpartition("@")[2] == host]
    if not workers:
        where = " on this host" if args.this_host else ""
        print(f"no worker{where} answered within {args.timeout:g} s")
        return 1
    nodes = max(len(w.node) for w in workers)
    queues = max(len(",".join(w.queues) or "-") for w in workers)
    for worker in workers:
        state = "ok" if worker.healthy else "; ".join(worker.problems)
        print(f"{worker.node:<{nodes}}  {','.join(worker.queues) or '-':<{queues}}  {state}")
    return 0 if all(w.healthy for w in workers) else 1
