"""Throughput and latency of the whole pipeline against a Celery no-op on the same broker.

Starts a real deployment on this machine (a fresh Postgres database, Redis, the local
Triton zoo on the CPU, Celery worker processes), then measures in one run:

- no-op: a Celery task that does nothing but record its message latency, same broker;
- pipeline: --prompts prompts submitted -> routed -> answered on Triton -> done in Postgres,
  in messages of --chunk request ids;
- single: one prompt submitted alone on the idle pipeline, --singles times per run;
- router stage: route_chunk called directly, per request, for chunks of 1 and of --chunk
  requests (its own overhead, without the broker);
- decisions: the router's decision path alone (featurise + predict + decide, 1,024 per call,
  bench.replay_table.time_decisions) in this process while the workers are idle;
- one message per request: the same pipeline with every request in a route message of its
  own and every routed request in an infer message of its own. The router publishes infer
  messages in chunks of its own MESSPLUS_CHUNK_SIZE, so this phase restarts the router and
  model workers with MESSPLUS_CHUNK_SIZE=1 on the same database, broker and zoo. It runs
  on --per-request-prompts prompts (fewer: it is an order of magnitude slower).

Peak RSS of each worker process is VmHWM from /proc (the worker and any children, summed;
a solo-pool worker is one process), reset through /proc/<pid>/clear_refs before each flow
so that it is the peak of that flow, not of the worker's start-up or earlier runs.

Prints markdown tables (medians of --runs runs) and writes JSON with --json.

    python -m bench.pipeline [--prompts 20000] [--per-request-prompts 2000] [--runs 3]
                             [--json out/pipeline.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from db.scratch import scratch_database
from workers.fleet import Fleet, worker_environment

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/12"
# Finishing is detected by polling the job's status counts; 50 ms is under 1% of a
# 20,000-prompt run and keeps the polling query from competing for the two cores.
POLL_S = 0.05

Row = dict[str, float]


@contextmanager
def workers(
    environment: dict[str, str], log_dir: Path, model_queues: list[str], model_workers: int
) -> Iterator[Fleet]:
    """One router and `model_workers` model workers (solo pools); all stopped on exit."""
    from workers import queues

    fleet = Fleet(environment, log_dir)
    try:
        fleet.start("route", [queues.ROUTE])
        for i in range(model_workers):
            fleet.start(f"model{i}", model_queues)
        yield fleet
    finally:
        fleet.stop()


def _process_tree(pid: int) -> list[int]:
    """pid and its descendants, from the parent pids in /proc/<pid>/stat."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while we looked
            continue
        # The command name is in parentheses and may hold spaces; the ppid follows it.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def reset_peak_rss(fleet: Fleet) -> None:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0)."""
    for process in fleet.processes.values():
        for pid in _process_tree(process.pid):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mb(fleet: Fleet) -> dict[str, float]:
    """VmHWM per worker in MB, summed over the worker's process tree."""
    peaks = {}
    for name, process in fleet.processes.items():
        total_kb = 0
        for pid in _process_tree(process.pid):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        peaks[name] = total_kb / 1024
    return peaks


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure_noop(n: int, redis_client: Any, noop: Any) -> Row:
    key = f"bench-noop-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    for _ in range(n):
        noop.apply_async(args=[time.time(), key], queue="noop")
    while redis_client.llen(key) < n:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    latencies = [float(x) for x in redis_client.lrange(key, 0, -1)]
    redis_client.delete(key)
    return {
        "per_s": n / elapsed,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
    }


def wait_done(sessions: Any, job_id: str, tenant_id: int, timeout_s: float = 900) -> None:
    from db.jobs import job_progress

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sessions.begin() as session:
            if job_progress(session, job_id, tenant_id).finished:
                return
        time.sleep(POLL_S)
    raise TimeoutError(f"job {job_id} did not finish in {timeout_s} s")


def request_latencies(sessions: Any, job_id: str) -> list[float]:
    from sqlalchemy import select

    from db.models import Request

    with sessions.begin() as session:
        rows = session.execute(
            select(Request.created_at, Request.updated_at).where(Request.job_id == job_id)
        ).all()
    return [(done - created).total_seconds() for created, done in rows]


def measure_pipeline(sessions: Any, tenant_id: int, prompts: list[str], chunk: int) -> Row:
    """Wall time from submitting (creating the job) to the last request done."""
    from db.jobs import create_job
    from workers.publish import publish_route

    started = time.perf_counter()
    with sessions.begin() as session:
        job_id, ids = create_job(session, tenant_id, prompts, "bench")
    publish_route(ids, chunk)
    wait_done(sessions, job_id, tenant_id)
    elapsed = time.perf_counter() - started
    latencies = request_latencies(sessions, job_id)
    return {
        "per_s": len(prompts) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
    }


def measure_single(sessions: Any, tenant_id: int, prompt: str, repeats: int) -> Row:
    """One request at a time on an otherwise idle pipeline: its latency, not a throughput."""
    latencies = [
        measure_pipeline(sessions, tenant_id, [prompt], 1)["p50_ms"] for _ in range(repeats)
    ]
    return {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


def measure_router_stage(sessions: Any, tenant_id: int, prompts: list[str], chunk: int) -> Row:
    """route_chunk alone, per request; the requests are routed but never published."""
    from db.jobs import create_job
    from workers.routing import PredictorCache, route_chunk

    cache, rng = PredictorCache(), np.random.default_rng(0)
    with sessions.begin() as session:
        _, ids = create_job(session, tenant_id, prompts, "bench-router")
    per_request = []
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        t0 = time.perf_counter()
        route_chunk(sessions, part, rng, cache)
        per_request.append((time.perf_counter() - t0) / len(part))
    return {
        "per_s": 1.0 / statistics.mean(per_request),
        "p50_ms": percentile(per_request, 50) * 1e3,
        "p99_ms": percentile(per_request, 99) * 1e3,
    }


def measure_decisions(data: Any) -> Row:
    """The decision path without database or broker, as bench.replay_table times it."""
    from bench.replay_table import time_decisions

    return {"per_s": time_decisions(data, 1024)}


def _cell(row: Row, key: str, spec: str) -> str:
    """A measured value, or "-" where the row has none (a lone request has no rate)."""
    value = row.get(key, math.nan)
    return "-" if math.isnan(value) else format(value, spec)


def print_tables(args: argparse.Namespace, medians: dict[str, Row], rss: dict[str, Row]) -> None:
    print(
        f"\n{args.prompts:,} prompts in chunks of {args.chunk}, 1 router + {args.model_workers} "
        f"model worker processes, medians of {args.runs} runs\n"
    )
    labels = {
        "noop": f"Celery no-op task, same broker ({args.prompts:,} tasks)",
        "pipeline": f"whole pipeline, chunks of {args.chunk}: submit -> route -> Triton -> done",
        "per_request": (
            f"whole pipeline, one message per request ({args.per_request_prompts:,} prompts)"
        ),
        "single": f"one request alone on the idle pipeline ({args.singles} per run)",
        "decisions": "router decision path, 1,024 per call (no database, no broker)",
        "router_chunk_n": f"router stage, {args.chunk} requests per call (per request)",
        "router_chunk_1": "router stage, 1 request per call",
    }
    print("| stage | requests/s | p50 ms | p99 ms |\n|---|---|---|---|")
    for name, label in labels.items():
        row = medians[name]
        print(
            f"| {label} | {_cell(row, 'per_s', ',.0f')} | {_cell(row, 'p50_ms', '.1f')} "
            f"| {_cell(row, 'p99_ms', '.1f')} |"
        )
    print(
        f"\n| worker process | peak RSS MB, {args.prompts:,} prompts in chunks of {args.chunk} "
        f"| peak RSS MB, {args.per_request_prompts:,} one per message |\n|---|---|---|"
    )
    for name, peak in rss["batched"].items():
        print(f"| {name} | {peak:.0f} | {_cell(rss['per_request'], name, '.0f')} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=20_000)
    parser.add_argument(
        "--per-request-prompts",
        type=int,
        default=2_000,
        help="prompts for the one-message-per-request comparison (it runs at a few hundred/s)",
    )
    parser.add_argument("--singles", type=int, default=50, help="lone requests per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--model-workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import redis

    from router.synthetic import synthetic_zoo
    from workers import queues, runtime
    from workers.app import use_broker
    from workers.provision import add_tenant, register_zoo
    from workers.zoo_server import start_zoo_process

    data = synthetic_zoo(2000, seed=0).data
    prompts = [data.prompts[i % data.n_requests] for i in range(args.prompts)]
    per_request_prompts = [
        data.prompts[i % data.n_requests] for i in range(args.per_request_prompts)
    ]
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    results: dict[str, list[Row]] = {
        name: []
        for name in (
            "noop",
            "pipeline",
            "per_request",
            "single",
            "decisions",
            "router_chunk_n",
            "router_chunk_1",
        )
    }
    rss_runs: dict[str, list[Row]] = {"batched": [], "per_request": []}
    model_queues = [queues.model_queue(m) for m in data.models]
    with (
        scratch_database(POSTGRES_ADMIN, "messplus_bench") as url,
        start_zoo_process(None) as zoo,
        tempfile.TemporaryDirectory() as logs,
    ):
        settings = {"database_url": url, "broker_url": REDIS_URL, "triton_url": zoo.grpc_url}
        batched_env = worker_environment(**settings, chunk_size=str(args.chunk))
        os.environ.update({k: v for k, v in batched_env.items() if k.startswith("MESSPLUS_")})
        runtime.close()
        use_broker(REDIS_URL)
        sessions = runtime.sessions()
        with sessions.begin() as session:
            register_zoo(session, data)
            tenant_id = add_tenant(session, "bench", 0.6).id
        try:
            with workers(
                batched_env, Path(logs) / "batched", model_queues, args.model_workers
            ) as fleet:
                fleet.start("noop", ["noop"], app="bench.noop_app")
                from bench.noop_app import noop

                # Warm-ups wait for the workers to connect and load the predictor.
                measure_noop(100, client, noop)
                measure_pipeline(sessions, tenant_id, prompts[: 4 * args.chunk], args.chunk)
                for run in range(args.runs):
                    print(f"run {run + 1}/{args.runs}: chunks of {args.chunk}", file=sys.stderr)
                    reset_peak_rss(fleet)
                    results["noop"].append(measure_noop(args.prompts, client, noop))
                    results["pipeline"].append(
                        measure_pipeline(sessions, tenant_id, prompts, args.chunk)
                    )
                    rss_runs["batched"].append(peak_rss_mb(fleet))
                    results["single"].append(
                        measure_single(sessions, tenant_id, prompts[0], args.singles)
                    )
                    results["decisions"].append(measure_decisions(data))
                    results["router_chunk_n"].append(
                        measure_router_stage(sessions, tenant_id, prompts, args.chunk)
                    )
                    results["router_chunk_1"].append(
                        measure_router_stage(sessions, tenant_id, prompts[:300], 1)
                    )
            per_request_env = worker_environment(**settings, chunk_size="1")
            with workers(
                per_request_env, Path(logs) / "per-request", model_queues, args.model_workers
            ) as fleet:
                measure_pipeline(sessions, tenant_id, per_request_prompts[:50], 1)
                for run in range(args.runs):
                    print(f"run {run + 1}/{args.runs}: one per message", file=sys.stderr)
                    reset_peak_rss(fleet)
                    results["per_request"].append(
                        measure_pipeline(sessions, tenant_id, per_request_prompts, 1)
                    )
                    rss_runs["per_request"].append(peak_rss_mb(fleet))
        finally:
            runtime.close()
            client.flushdb()
    medians = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for name, runs in results.items()
    }
    rss = {
        phase: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for phase, runs in rss_runs.items()
    }
    print_tables(args, medians, rss)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "runs": results,
                    "medians": medians,
                    "peak_rss_mb_runs": rss_runs,
                    "peak_rss_mb": rss,
                },
                indent=2,
            )
        )
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
