"""`messplus submit FILE.jsonl --tenant T [--wait]`: send a batch of prompts to the router.

The whole file is checked before anything is stored or sent (see workers.cli._input for
why), the job and its requests are stored in one transaction, and only then are their ids
published to the `route` queue in chunks: a router never receives an id it cannot find.
The job id is the only thing on stdout, so `JOB=$(messplus submit ...)` works.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from workers.cli import CliError
from workers.cli._input import check_lines, finite_float, prompt_of, read_jsonl, refuse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    submit = subparsers.add_parser(
        "submit",
        help="submit a JSON-lines file of prompts as one job",
        description='Each line is a JSON string or an object {"prompt": "..."}; blank '
        "lines are skipped. All or nothing: every line is checked first, and if any is bad "
        "(malformed JSON, invalid UTF-8, an unknown key, an empty prompt or one larger than "
        "MESSPLUS_MAX_PROMPT_BYTES) each bad line is reported with its number and nothing is "
        "submitted, so a fixed file can simply be submitted again; so is a file larger than "
        "MESSPLUS_MAX_FILE_BYTES. The job id is printed "
        "alone on stdout; --wait then shows progress on stderr until every request is done "
        "or failed.",
    )
    submit.add_argument("file", type=Path, metavar="FILE.jsonl")
    submit.add_argument("--tenant", required=True, help="the submitting tenant's name")
    submit.add_argument("--wait", action="store_true", help="wait until the job is finished")
    submit.add_argument(
        "--poll-interval",
        type=finite_float,
        default=1.0,
        metavar="S",
        help="with --wait: seconds between progress checks (default %(default)s)",
    )
    submit.set_defaults(func=_submit)


def _submit(args: argparse.Namespace) -> int:
    from db.jobs import create_job
    from db.tenants import get_tenant_by_name
    from workers.cli._context import broker_errors, check_broker, settings, transaction
    from workers.publish import publish_route

    if args.poll_interval <= 0:
        raise CliError(f"--poll-interval must be > 0, got {args.poll_interval}")
    config = settings()
    values, bad = read_jsonl(args.file, config.max_file_bytes)
    lines = check_lines(values, lambda value: prompt_of(value, config.max_prompt_bytes), bad)
    refuse(args.file, bad, "nothing submitted")
    prompts = [prompt for _, prompt in lines]
    with transaction() as session:
        tenant_id = get_tenant_by_name(session, args.tenant).id
    check_broker()
    with transaction() as session:
        job_id, request_ids = create_job(session, tenant_id, prompts, args.file.name[:200])
    with broker_errors(f"job {job_id} is stored, but its requests could not all be queued"):
        sent = publish_route(request_ids, config.chunk_size)
    print(job_id, flush=True)
    print(f"{len(prompts)} prompts queued in {sent} messages", file=sys.stderr)
    if args.wait:
        _wait(job_id, tenant_id, len(prompts), args.poll_interval)
    return 0


def _wait(job_id: str, tenant_id: int, total: int, interval: float) -> None:
    """Poll the job's progress until every request is final; one summary line on stderr.

    Requests reach a final state only through workers, so with none running this waits
    until Ctrl-C (exit 130); the job itself is unaffected and can be polled again with
    `messplus status`.
    """
    from tqdm import tqdm

    from db.jobs import job_progress
    from workers.cli._context import transaction

    started = time.monotonic()
    with tqdm(total=total, desc=f"job {job_id[:8]}", unit="req", file=sys.stderr) as bar:
        while True:
            with transaction() as session:
                progress = job_progress(session, job_id, tenant_id)
            bar.update(progress.done + progress.failed - bar.n)
            bar.set_postfix(queued=progress.queued, routed=progress.routed, failed=progress.failed)
            if progress.finished:
                break
            time.sleep(interval)
    print(
        f"job {job_id}: {progress.done} done, {progress.failed} failed "
        f"in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
