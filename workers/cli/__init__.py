"""The `messplus` command line: one module per command group, each exposing `register`.

Command modules are imported lazily by name so that `messplus replay` never pays for
Celery, SQLAlchemy or tritonclient imports it does not use.

Every command says what it uses (`uses`: DATABASE, BROKER or nothing), and main() checks
that before the command runs (workers.cli._context.preflight): all MESSPLUS_ settings, the
URLs' form included, and that the database opens. So any command given a broken database
or broker URL ends in one error line with status 2, never a traceback, and
tests/cli/test_cli_sweep.py proves it for every command the parser knows.

What commands print on stdout is for a reader that may leave early (`messplus zoo list |
head -1`): then the command ends quietly with status 141, as a tool killed by SIGPIPE
does. A stdout that is closed from the start is refused in one line before anything runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence

__all__ = ["BROKEN_PIPE_EXIT", "BROKER", "DATABASE", "CliError", "build_parser", "main", "uses"]

DATABASE = "database"
BROKER = "broker"
BROKEN_PIPE_EXIT = 128 + signal.SIGPIPE

# Each module defines `register(subparsers) -> None`; every parser it adds sets
# `func(args) -> int` and `uses` (a frozenset of DATABASE and BROKER, or a function of
# the parsed arguments returning one) through `set_defaults`.
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
    "workers.cli.health",
    "workers.cli.api",
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


def uses(args: argparse.Namespace) -> frozenset[str]:
    """What the parsed command uses of the deployment (see the module docstring); a
    command that declares nothing is run without the preflight (the sweep test refuses
    such a command)."""
    declared: frozenset[str] | Callable[[argparse.Namespace], frozenset[str]]
    declared = getattr(args, "uses", frozenset())
    return declared(args) if callable(declared) else declared


def main(argv: Sequence[str] | None = None) -> int:
    if sys.stdout is None:  # the interpreter found file descriptor 1 closed
        print(
            "messplus: error: standard output is closed "
            "(redirect it to /dev/null to discard what a command prints)",
            file=sys.stderr,
        )
        return 2
    try:
        code = _run(argv)
        sys.stdout.flush()  # a reader gone shows here rather than at interpreter exit
    except BrokenPipeError:
        silence_stdout()
        return BROKEN_PIPE_EXIT
    return code


def _run(argv: Sequence[str] | None) -> int:
    from workers.cli._context import preflight

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        preflight(
            uses(args),
            url=getattr(args, "url", None),
            creates=getattr(args, "creates_database", False),
        )
        return int(args.func(args))
    except CliError as exc:
        print(f"messplus: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("messplus: interrupted", file=sys.stderr)
        return 130


def silence_stdout() -> None:
    """For when stdout's reader went away: what is still buffered can never be delivered.
    Point stdout at /dev/null, so that neither the interpreter's last flush nor a thread
    still writing (Triton's log forwarder) fails again with a BrokenPipeError traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file (a test's captured stdout)
        pass
