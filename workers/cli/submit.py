"""`messplus submit FILE.jsonl --tenant T [--wait]`: send a batch of prompts to the router.

The whole file is checked before anything is stored or sent (see workers.cli._input for
why), the job and its requests are stored in one transaction, and only then are their ids
published to the `route` queue in chunks: a router never receives an id it cannot find.
The job id is the only thing on stdout, so `JOB=$(messplus submit ...)` works.

The file is read twice, a line at a time, and never held whole: once to check every line,
once to store the prompts in batches inside that one transaction. Memory stays near one
batch of prompts plus 8 bytes a request, whatever the file's size (bench/submit_memory.py).
A file changed between the two readings is refused and nothing is stored.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

from workers.cli import BROKER, DATABASE, CliError
from workers.cli._input import BadLine, finite_float, iter_jsonl, prompt_of, refuse

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
    submit.add_argument(
        "--timeout",
        type=finite_float,
        metavar="S",
        help="with --wait: stop waiting after S seconds, with status 124 (the job goes on); "
        "after 10 checks without progress the wait says which queue no worker consumes",
    )
    submit.set_defaults(func=_submit, uses=frozenset({DATABASE, BROKER}))


def _submit(args: argparse.Namespace) -> int:
    from db.jobs import create_job_in_batches
    from db.tenants import get_tenant_by_name
    from workers.cli._context import broker_errors, check_broker, settings, transaction
    from workers.cli._wait import wait_for_job
    from workers.publish import publish_route

    if args.poll_interval <= 0:
        raise CliError(f"--poll-interval must be > 0, got {args.poll_interval}")
    if args.timeout is not None and not args.wait:
        raise CliError("--timeout needs --wait: it limits the wait, not the job")
    if args.timeout is not None and args.timeout <= 0:
        raise CliError(f"--timeout must be > 0, got {args.timeout:g}")
    config = settings()
    n_prompts, digest = _check(args.file, config.max_file_bytes, config.max_prompt_bytes)
    with transaction() as session:
        tenant_id = get_tenant_by_name(session, args.tenant).id
    check_broker()
    prompts = _prompts(args.file, config.max_file_bytes, config.max_prompt_bytes, digest)
    with transaction() as session:
        job_id, request_ids = create_job_in_batches(
            session, tenant_id, prompts, n_prompts, args.file.name[:200]
        )
    with broker_errors(f"job {job_id} is stored, but its requests could not all be queued"):
        sent = publish_route(request_ids, config.chunk_size)
    print(job_id, flush=True)
    print(f"{n_prompts} prompts queued in {sent} messages", file=sys.stderr)
    if args.wait:
        return wait_for_job(job_id, tenant_id, n_prompts, args.poll_interval, args.timeout)
    return 0


def _check(path: Path, max_file_bytes: int, max_prompt_bytes: int) -> tuple[int, bytes]:
    """The first reading: every line checked, each bad one reported (CliError, nothing
    stored); returns how many prompts the file holds and a digest of them."""
    bad: list[BadLine] = []
    digest = hashlib.sha256()
    count = 0
    for number, value in iter_jsonl(path, max_file_bytes):
        if isinstance(value, BadLine):
            bad.append(value)
            continue
        try:
            prompt = prompt_of(value, max_prompt_bytes)
        except ValueError as exc:
            bad.append(BadLine(number, str(exc)))
            continue
        digest.update(prompt.encode("utf-8") + b"\x00")
        count += 1
    if not count and not bad:
        raise CliError(f"{path} is empty")
    refuse(path, bad, "nothing submitted")
    return count, digest.digest()


def _prompts(
    path: Path, max_file_bytes: int, max_prompt_bytes: int, checked: bytes
) -> Iterator[str]:
    """The second reading: the prompts, one at a time. A file that no longer reads as it
    did when checked raises CliError, so the transaction storing them rolls back."""
    changed = CliError(f"{path} changed while it was being submitted (nothing submitted)")
    digest = hashlib.sha256()
    for _, value in iter_jsonl(path, max_file_bytes):
        if isinstance(value, BadLine):
            raise changed
        try:
            prompt = prompt_of(value, max_prompt_bytes)
        except ValueError:
            raise changed from None
        digest.update(prompt.encode("utf-8") + b"\x00")
        yield prompt
    if digest.digest() != checked:
        raise changed
