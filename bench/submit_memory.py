"""Peak memory of `messplus submit` against the size of the file it submits.

Writes a JSON-lines file of N prompts (about 115 bytes a line, like the files in issue 12),
runs `messplus submit FILE --tenant bench` in a process of its own against a fresh Postgres
database and a Redis database of its own, and reports that process's peak RSS (ru_maxrss
from wait4) and wall time. `--code DIR` runs the command from another checkout of the
project (an older commit, to compare), with this environment's packages.

    python -m bench.submit_memory [--lines 100000,1000000] [--code DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from db.scratch import scratch_database

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = ("127.0.0.1", 6379)
LINE_BYTES = 115


@contextmanager
def redis_database() -> Iterator[str]:
    """A Redis database no test or benchmark is using, claimed as the tests claim theirs
    (tests/e2e/conftest.py), emptied before and after."""
    import redis

    claims = redis.Redis(*REDIS, db=0)
    number = next(
        (
            n
            for n in range(1, 16)
            if claims.set(f"messplus-test-db:{n}", os.getpid(), nx=True, ex=7200)
        ),
        None,
    )
    if number is None:
        raise SystemExit("every Redis database 1-15 is claimed by a test run")
    client = redis.Redis(*REDIS, db=number)
    client.flushdb()
    try:
        yield f"redis://{REDIS[0]}:{REDIS[1]}/{number}"
    finally:
        client.flushdb()
        claims.delete(f"messplus-test-db:{number}")


def write_batch(path: Path, n_lines: int) -> int:
    """n_lines prompts of LINE_BYTES bytes each (as JSON strings); returns the file size."""
    from router.synthetic import synthetic_zoo

    prompts = synthetic_zoo(2000, seed=0).data.prompts
    with path.open("w") as out:
        for i in range(n_lines):
            text = f"{i} {prompts[i % len(prompts)]} "
            out.write(json.dumps((text * 4)[: LINE_BYTES - 3]) + "\n")
    return path.stat().st_size


def run_submit(path: Path, environment: dict[str, str], code: Path) -> dict[str, float]:
    """One `messplus submit` in its own process: seconds and peak RSS in MB."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "submit", str(path), "--tenant", "bench"],
        cwd=code,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"messplus submit failed: {stderr}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument("--code", type=Path, default=Path.cwd(), help="checkout to run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from workers import runtime
    from workers.fleet import worker_environment
    from workers.provision import add_tenant

    rows: list[dict[str, Any]] = []
    with (
        scratch_database(POSTGRES_ADMIN, "messplus_submitmem") as url,
        redis_database() as broker_url,
        tempfile.TemporaryDirectory() as work,
    ):
        environment = worker_environment(database_url=url, broker_url=broker_url)
        environment["PYTHONPATH"] = str(args.code.resolve())
        os.environ.update({k: v for k, v in environment.items() if k.startswith("MESSPLUS_")})
        runtime.close()
        with runtime.sessions().begin() as session:
            add_tenant(session, "bench", 0.6)
        for n_lines in (int(n) for n in args.lines.split(",")):
            path = Path(work) / f"batch-{n_lines}.jsonl"
            size = write_batch(path, n_lines)
            print(f"submitting {n_lines:,} lines ({size / 2**20:.1f} MiB) ...", file=sys.stderr)
            measured = run_submit(path, environment, args.code)
            rows.append({"lines": n_lines, "file_mb": size / 2**20, **measured})
            path.unlink()
        runtime.close()
    print("| lines | file MiB | seconds | peak RSS MiB | peak RSS / file size |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['lines']:,} | {row['file_mb']:.1f} | {row['seconds']:.1f} "
            f"| {row['peak_rss_mb']:.0f} | {row['peak_rss_mb'] / row['file_mb']:.1f}x |"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
