"""`messplus worker route|feedback|train` and `messplus worker model NAME`: one Celery worker
consuming one queue, in the foreground.

One queue per process, so each stage scales on its own. Concurrency 1 (the default) runs
the solo pool: tasks execute in the worker process itself, with no child to lose, which is
what the slow, chunked tasks want. Gossip, mingle and heartbeat are off: these workers never
coordinate with each other through the broker, and the events would only add broker traffic.
"""

from __future__ import annotations

import argparse
import os

from workers.cli import BROKER, DATABASE, CliError
from workers.cli._input import name, positive_int

__all__ = ["register"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = subparsers.add_parser("worker", help="run a Celery worker for one queue")
    stages = worker.add_subparsers(dest="worker_stage", required=True, metavar="STAGE")
    described = {
        "route": "decide which model answers each request (queue route)",
        "feedback": "store ratings and update the SLA state (queue feedback)",
        "train": "retrain the satisfaction predictor (queue train)",
        "model": "answer requests with one zoo model on Triton (queue model.NAME)",
    }
    for stage, text in described.items():
        parser = stages.add_parser(stage, help=text, description=text[0].upper() + text[1:])
        if stage == "model":
            parser.add_argument("model", metavar="NAME", help="the zoo model's name")
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            default=1,
            metavar="N",
            help="tasks at once: 1 runs the solo pool, more a prefork pool (default 1)",
        )
        parser.add_argument(
            "--loglevel",
            type=str.upper,
            choices=LOG_LEVELS,
            default="INFO",
            help="default %(default)s",
        )
        parser.set_defaults(func=_worker, uses=frozenset({DATABASE, BROKER}))


def _argv(queue: str, concurrency: int, loglevel: str) -> list[str]:
    """The `celery worker` arguments for one queue; the node name says which queue and
    which process, so `celery inspect` output and broker clients can be told apart."""
    return [
        "worker",
        f"--queues={queue}",
        f"--hostname={queue}-{os.getpid()}@%h",
        f"--pool={'solo' if concurrency == 1 else 'prefork'}",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def _worker(args: argparse.Namespace) -> int:
    from workers import queues
    from workers.app import app
    from workers.cli._context import check_broker, check_schema, settings

    check_schema(settings().database_url)
    if args.worker_stage == "model":
        queue = queues.model_queue(_registered_model(args.model))
    else:
        queue = {"route": queues.ROUTE, "feedback": queues.FEEDBACK, "train": queues.TRAIN}[
            args.worker_stage
        ]
    check_broker()
    # The first line on stdout: a reader already gone ends the command here, quietly,
    # rather than inside Celery's banner as an "Unrecoverable error".
    print(f"messplus: starting a worker for queue {queue}", flush=True)
    app.worker_main(_argv(queue, args.concurrency, args.loglevel))
    return 0


def _registered_model(model: str) -> str:
    """The model's name, if the zoo has it: a worker for a mistyped model would consume an
    empty queue forever without a word."""
    from db.errors import UnknownModel
    from db.zoo import get_model_by_name
    from workers.cli._context import transaction

    name(model, "model")
    with transaction() as session:
        try:
            return get_model_by_name(session, model).name
        except UnknownModel as exc:
            raise CliError(f"{exc} (`messplus zoo list` shows the registered models)") from None
