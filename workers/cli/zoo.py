"""`messplus zoo serve`: the local CPU model zoo on a real Triton, in the foreground.

The default ports are Triton's own (gRPC 8001, HTTP 8000), so workers configured for a
local Triton reach it without changes; 0 picks a free port.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from workers.cli import CliError

if TYPE_CHECKING:
    from workers.zoo_server import ZooServer

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    zoo = subparsers.add_parser("zoo", help="the local model zoo on Triton (CPU)")
    commands = zoo.add_subparsers(dest="zoo_command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the zoo until Ctrl-C or SIGTERM",
        description="Serve one Triton model per zoo member (text_input -> text_output, plus "
        "would_satisfy, cost, tokens). Without --data: the synthetic zoo (2000 prompts, seed 0).",
    )
    serve.add_argument("--data", type=Path, metavar="CSV", help="labelled zoo CSV to replay")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    serve.add_argument("--grpc-port", type=_port, default=8001, help="default %(default)s")
    serve.add_argument("--http-port", type=_port, default=8000, help="default %(default)s")
    serve.set_defaults(func=_serve)


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {raw!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {port}")
    return port


def _announce(server: ZooServer) -> None:
    data = server.data
    print(f"zoo ready: {len(server.models)} models, {data.n_requests} prompts from {data.name}")
    print(f"  grpc: {server.grpc_url}")
    print(f"  http: {server.http_url}")
    for model in server.models:
        print(f"  model {model}")
    print("Ctrl-C or SIGTERM stops it.", flush=True)


def _serve(args: argparse.Namespace) -> int:
    from router.dataset import DatasetError
    from workers.zoo_server import ZooError, load_zoo, serve

    if args.grpc_port and args.grpc_port == args.http_port:
        raise CliError(f"--grpc-port and --http-port are both {args.grpc_port}")
    try:
        data = load_zoo(args.data)
    except DatasetError as exc:
        raise CliError(str(exc)) from exc
    try:
        status = serve(
            data,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            host=args.host,
            on_ready=_announce,
        )
    except ZooError as exc:
        raise CliError(str(exc)) from exc
    if status:
        raise CliError("Triton exited unexpectedly")
    print("zoo stopped")
    return 0
