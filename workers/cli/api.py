"""`messplus api serve [--host H] [--port N] [--workers N]`: the tenants' HTTP API.

The app lives in api/ and is named to uvicorn as a string (`api.app:create_app`), so
nothing in workers/ imports it; it needs the `api` extra (pip install 'messplus[api]').
"""

from __future__ import annotations

import argparse
import importlib.util

from workers.cli import BROKER, DATABASE, CliError
from workers.cli._input import positive_int, tcp_port

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = subparsers.add_parser("api", help="the OpenAI-compatible HTTP API for tenants")
    commands = api.add_subparsers(dest="api_command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the API until interrupted",
        description="Serve /v1/files, /v1/batches, /v1/chat/completions, /v1/completions, "
        "/v1/models and /v1/feedback with per-tenant API keys (`messplus tenants keys`), "
        "plus /healthz and /openapi.json. Stateless: run as many as you like behind a load "
        "balancer, with the workers' MESSPLUS_DATABASE_URL and MESSPLUS_BROKER_URL (Redis).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    serve.add_argument("--port", type=tcp_port, default=8080, help="port (default %(default)s)")
    serve.add_argument(
        "--workers", type=positive_int, default=1, help="uvicorn worker processes (default 1)"
    )
    serve.set_defaults(func=_serve, uses=frozenset({DATABASE, BROKER}))


def _serve(args: argparse.Namespace) -> int:
    from workers.cli._context import check_broker, settings
    from workers.settings import api_broker_problem

    missing = [
        m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise CliError(f"the API needs {', '.join(missing)}: pip install 'messplus[api]'")
    import uvicorn

    # Checked here, once, rather than as a traceback from every uvicorn worker process.
    if problem := api_broker_problem(settings().broker_url):
        raise CliError(problem)
    check_broker()
    # A line of our own first: a stdout whose reader is gone ends the command here.
    print(
        f"messplus: starting the HTTP API on http://{args.host}:{args.port} "
        f"({args.workers} process(es))",
        flush=True,
    )
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        # Clients keep connections open between calls; a load balancer's idle timeout
        # is usually 60 s, so close ours after it would.
        timeout_keep_alive=75,
    )
    return 0
