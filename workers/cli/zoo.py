"""`messplus zoo serve|register|list`: the local CPU model zoo on a real Triton, and the
database's record of it.

The default ports are Triton's own (gRPC 8001, HTTP 8000), so workers configured for a
local Triton reach it without changes; 0 picks a free port. `register` reads the same data
`serve` does, so the database names exactly the models Triton serves, in the same order
(cheapest first), each priced at its mean cost in the data.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from workers.cli import DATABASE, CliError, silence_stdout

if TYPE_CHECKING:
    from workers.zoo_server import ZooServer

__all__ = ["register"]

MAX_UNIT_CHARS = 16  # zoo_models.cost_unit is a String(16)


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
    serve.set_defaults(func=_serve, uses=frozenset())
    register_ = commands.add_parser(
        "register",
        help="record the zoo's models in the database",
        description="Create or update one database row per zoo model: name and Triton model "
        "name from the data, position = column order, cost per request = the model's mean "
        "cost in the data. Without --data: the synthetic zoo `zoo serve` serves by default.",
    )
    register_.add_argument("--data", type=Path, metavar="CSV", help="labelled zoo CSV")
    register_.add_argument("--unit", help="cost unit to record (default: the data's, J)")
    register_.set_defaults(func=_register, uses=frozenset({DATABASE}))
    listing = commands.add_parser("list", help="the models recorded in the database")
    listing.set_defaults(func=_list, uses=frozenset({DATABASE}))


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
    try:
        print(f"zoo ready: {len(server.models)} models, {data.n_requests} prompts from {data.name}")
        print(f"  grpc: {server.grpc_url}")
        print(f"  http: {server.http_url}")
        for model in server.models:
            print(f"  model {model}")
        print("Ctrl-C or SIGTERM stops it.", flush=True)
    except BrokenPipeError:
        # Before Triton is stopped: it prints its last words to this stdout too.
        silence_stdout()
        raise


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


def _register(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from router.dataset import DatasetError
    from workers.cli._context import transaction
    from workers.provision import register_zoo
    from workers.zoo_server import load_zoo

    try:
        data = load_zoo(args.data)
    except DatasetError as exc:
        raise CliError(str(exc)) from exc
    if args.unit is not None:
        if not 0 < len(args.unit) <= MAX_UNIT_CHARS or args.unit != args.unit.strip():
            raise CliError(f"--unit must be 1 to {MAX_UNIT_CHARS} characters, got {args.unit!r}")
        data = replace(data, cost_unit=args.unit)
    with transaction() as session:
        register_zoo(session, data)
    print(f"registered {data.n_models} models from {data.name}")
    return _list(args)


def _list(args: argparse.Namespace) -> int:
    from db.zoo import list_models
    from workers.cli._context import transaction

    with transaction() as session:
        models = list_models(session)
    if not models:
        print("no models (register them with `messplus zoo register`)")
        return 0
    width = max(len(m.name) for m in models)
    triton = max(len("triton model"), *(len(m.triton_model_name) for m in models))
    print(
        f"{'pos':>3}  {'name':<{width}}  {'triton model':<{triton}}  {'cost/request':>12}  "
        f"{'cost/token':>10}  unit  enabled"
    )
    for m in models:
        print(
            f"{m.position:>3}  {m.name:<{width}}  {m.triton_model_name:<{triton}}  "
            f"{m.cost_per_request:>12.4g}  {m.cost_per_token:>10.4g}  {m.cost_unit:<4}  "
            f"{'yes' if m.enabled else 'no'}"
        )
    return 0
