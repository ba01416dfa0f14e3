"""`messplus worker route|feedback|train` and `messplus worker model NAME`: one Celery worker
consuming one queue, in the foreground.

One queue per process, so each stage scales on its own. Concurrency 1 (the default) runs
the solo pool: tasks execute in the worker process itself, with no child to lose, which is
what the slow, chunked tasks want. Gossip, mingle and heartbeat are off: these workers never
coordinate with each other through the broker, and the events would only add broker traffic.

A worker refuses to start, in one line with status 2, when it could not do its work: a
database without the schema this messplus needs, a broker it cannot reach, and for a
model worker a Triton that does not serve its model the way workers call it (not loaded,
or another tensor contract). Celery alone would start "ready" and then fail, or retry,
every message it takes. Once running, the same Triton check is its health
(workers.health, `messplus health`).
"""

from __future__ import annotations

import argparse
import os
import sys

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

    config = settings()
    check_schema(config.database_url)
    if args.worker_stage == "model":
        queue = queues.model_queue(_served_model(args.model, config.triton_url))
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


def _served_model(model: str, triton_url: str) -> str:
    """The model's name, if the zoo has it and Triton serves it as workers call it.

    A worker for a mistyped model would consume an empty queue forever without a word; one
    whose Triton lacks the model would fail every chunk after minutes of retries. A
    disabled model still gets its worker: the requests routed to it before it was
    disabled wait for its answers.
    """
    from db.errors import UnknownModel
    from db.zoo import get_model_by_name, waiting_requests
    from workers.cli._context import transaction
    from workers.triton_client import serving_problems

    name(model, "model")
    with transaction() as session:
        try:
            row = get_model_by_name(session, model)
        except UnknownModel as exc:
            raise CliError(f"{exc} (`messplus zoo list` shows the registered models)") from None
        triton_name, enabled = row.triton_model_name, row.enabled
        waiting = len(waiting_requests(session, row.id)) if not enabled else 0
    if problems := serving_problems(triton_url, [triton_name]):
        shown = model if triton_name == model else f"{model} (Triton model {triton_name})"
        raise CliError(f"not starting a worker for model {shown}: {'; '.join(problems)}")
    if not enabled:
        print(
            f"messplus: model {model} is disabled: this worker answers the {waiting} "
            "request(s) routed to it before, and nothing new",
            file=sys.stderr,
        )
    return model
