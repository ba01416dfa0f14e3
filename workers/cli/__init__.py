"""The `messplus` command line: one module per command group, each exposing `register`.

Command modules are imported lazily by name so that `messplus replay` never pays for
Celery, SQLAlchemy or tritonclient imports it does not use.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["CliError", "main"]

# Each module defines `register(subparsers) -> None`; every parser it adds sets
# `func(args) -> int` through `set_defaults`.
COMMAND_MODULES: tuple[str, ...] = (
    "workers.cli.replay",
    "workers.cli.zoo",
    "workers.cli.db",
    "workers.cli.demo",
    "workers.cli.reconcile",
    "workers.cli.tenants",
    "workers.cli.submit",
    "workers.cli.jobs",
    "workers.cli.feedback",
    "workers.cli.worker",
    "workers.cli.training",
    "workers.cli.sla",
    "workers.cli.report",
    "workers.cli.metrics",
)


class CliError(Exception):
    """A user-facing error: printed as one line `messplus: error: ...`, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="messplus",
        description="MESS+ LLM router: route each request to the cheapest model meeting the SLA.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"messplus: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("messplus: interrupted", file=sys.stderr)
        return 130
