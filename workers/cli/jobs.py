"""`messplus status JOB --tenant T` and `messplus results JOB --tenant T [-o FILE.jsonl]`.

Both read the database only (never the broker), so they work while workers are busy or
down. A job is reachable only through the tenant that submitted it; asking as another
tenant gives the same "unknown job" as a job id that never existed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from workers.cli import DATABASE, CliError

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = subparsers.add_parser(
        "status",
        help="how many of a job's requests are queued, routed, done, failed",
        description="One line of counts per status, or with --json one JSON object with the "
        "counts, the total and whether the job is finished (no request queued or routed).",
    )
    status.add_argument("job", metavar="JOB")
    status.add_argument("--tenant", required=True, help="the tenant that submitted the job")
    status.add_argument("--json", action="store_true", help="print one JSON object only")
    status.set_defaults(func=_status, uses=frozenset({DATABASE}))
    results = subparsers.add_parser(
        "results",
        help="a job's answers, one JSON object per request",
        description="One JSON object per request in submission order: request_id (what "
        "`messplus feedback` names), seq, prompt, status, failure_reason, served_model, "
        "response and cost (the total over every model that answered, so exploration shows). "
        "Requests still in flight have status queued or routed and no response yet.",
    )
    results.add_argument("job", metavar="JOB")
    results.add_argument("--tenant", required=True, help="the tenant that submitted the job")
    results.add_argument(
        "-o", "--output", type=Path, metavar="FILE.jsonl", help="write here, not to stdout"
    )
    results.set_defaults(func=_results, uses=frozenset({DATABASE}))


def _status(args: argparse.Namespace) -> int:
    from db.jobs import job_progress
    from db.tenants import get_tenant_by_name
    from workers.cli._context import transaction

    with transaction() as session:
        tenant_id = get_tenant_by_name(session, args.tenant).id
        progress = job_progress(session, args.job, tenant_id)
    if args.json:
        document = {"job": args.job, **asdict(progress)}
        document |= {"total": progress.total, "finished": progress.finished}
        print(json.dumps(document))
        return 0
    state = "finished" if progress.finished else "running"
    print(
        f"job {args.job}: {progress.total} requests, {progress.queued} queued, "
        f"{progress.routed} routed, {progress.done} done, {progress.failed} failed ({state})"
    )
    return 0


def _results(args: argparse.Namespace) -> int:
    from db.jobs import job_results
    from db.tenants import get_tenant_by_name
    from workers.cli._context import transaction

    with transaction() as session:
        tenant_id = get_tenant_by_name(session, args.tenant).id
        results = job_results(session, args.job, tenant_id)
    lines = [
        json.dumps(
            {
                "request_id": r.request_id,
                "seq": r.seq,
                "prompt": r.prompt,
                "status": r.status.value,
                "failure_reason": r.failure_reason,
                "served_model": r.served_model,
                "response": r.text,
                "cost": r.cost,
            },
            ensure_ascii=False,
        )
        + "\n"
        for r in results
    ]
    if args.output is None:
        sys.stdout.writelines(lines)
        return 0
    try:
        with args.output.open("w", encoding="utf-8") as handle:
            handle.writelines(lines)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"{len(lines)} results written to {args.output}", file=sys.stderr)
    return 0
