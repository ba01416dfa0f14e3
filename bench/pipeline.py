"""Throughput and latency of the whole pipeline against a Celery no-op on the same broker.

Starts a real deployment on this machine (a fresh Postgres database, Redis, the local
Triton zoo on the CPU, Celery worker processes), then measures in one run:

- no-op: a Celery task that does nothing but record its message latency, same broker;
- pipeline: N prompts submitted -> routed -> answered on Triton -> done in Postgres;
- single: one prompt submitted alone on the idle pipeline, several times;
- router stage: route_chunk called directly, per request, for chunks of 1 and of
  MESSPLUS_CHUNK_SIZE requests (its own overhead, without the broker).

Prints a markdown table (medians of --runs runs) and writes JSON with --json.

    python -m bench.pipeline [--prompts 2000] [--runs 3] [--json out/pipeline.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/12"


@contextmanager
def fresh_database() -> Iterator[str]:
    from sqlalchemy import create_engine, text

    from db.migrate import upgrade

    name = f"messplus_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure_noop(n: int, redis_client, noop) -> dict[str, float]:  # type: ignore[no-untyped-def]
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


def wait_done(sessions, job_id: str, tenant_id: int, timeout_s: float = 900) -> None:  # type: ignore[no-untyped-def]
    from db.jobs import job_progress

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sessions.begin() as session:
            if job_progress(session, job_id, tenant_id).finished:
                return
        time.sleep(0.02)
    raise TimeoutError(f"job {job_id} did not finish in {timeout_s} s")


def request_latencies(sessions, job_id: str) -> list[float]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from db.models import Request

    with sessions.begin() as session:
        rows = session.execute(
            select(Request.created_at, Request.updated_at).where(Request.job_id == job_id)
        ).all()
    return [(done - created).total_seconds() for created, done in rows]


def measure_pipeline(sessions, tenant_id: int, prompts: list[str], chunk: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
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


def measure_router_stage(
    sessions, tenant_id: int, prompts: list[str], chunk: int
) -> dict[str, float]:  # type: ignore[no-untyped-def]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--model-workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import redis

    from router.synthetic import synthetic_zoo
    from workers import queues, runtime
    from workers.app import use_broker
    from workers.fleet import Fleet, worker_environment
    from workers.provision import add_tenant, register_zoo
    from workers.zoo_server import start_zoo_process

    data = synthetic_zoo(2000, seed=0).data
    prompts = [data.prompts[i % data.n_requests] for i in range(args.prompts)]
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    results: dict[str, list[dict[str, float]]] = {
        "noop": [],
        "pipeline": [],
        "single": [],
        "router_chunk_1": [],
        "router_chunk_n": [],
    }
    with (
        fresh_database() as url,
        start_zoo_process(None) as zoo,
        tempfile.TemporaryDirectory() as logs,
    ):
        settings = {
            "database_url": url,
            "broker_url": REDIS_URL,
            "triton_url": zoo.grpc_url,
            "chunk_size": str(args.chunk),
        }
        environment = worker_environment(**settings)
        os.environ.update({k: v for k, v in environment.items() if k.startswith("MESSPLUS_")})
        runtime.close()
        use_broker(REDIS_URL)
        sessions = runtime.sessions()
        with sessions.begin() as session:
            register_zoo(session, data)
            tenant_id = add_tenant(session, "bench", 0.6).id
        fleet = Fleet(environment, Path(logs))
        model_queues = [queues.model_queue(m) for m in data.models]
        try:
            fleet.start("route", [queues.ROUTE])
            for i in range(args.model_workers):
                fleet.start(f"model{i}", model_queues)
            fleet.start("noop", ["noop"], app="bench.noop_app")
            from bench.noop_app import noop

            time.sleep(3)  # let the workers connect
            measure_noop(100, client, noop)  # warm-up
            for run in range(args.runs):
                print(f"run {run + 1}/{args.runs} ...", file=sys.stderr)
                results["noop"].append(measure_noop(args.prompts, client, noop))
                results["pipeline"].append(
                    measure_pipeline(sessions, tenant_id, prompts, args.chunk)
                )
                singles = [measure_pipeline(sessions, tenant_id, prompts[:1], 1) for _ in range(20)]
                lat = [s["p50_ms"] for s in singles]
                results["single"].append(
                    {
                        "per_s": float("nan"),
                        "p50_ms": percentile(lat, 50),
                        "p99_ms": percentile(lat, 99),
                    }
                )
                results["router_chunk_1"].append(
                    measure_router_stage(sessions, tenant_id, prompts[:300], 1)
                )
                results["router_chunk_n"].append(
                    measure_router_stage(sessions, tenant_id, prompts, args.chunk)
                )
        finally:
            fleet.stop()
            runtime.close()
            client.flushdb()
    medians = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for name, runs in results.items()
    }
    print(
        f"\n{args.prompts} prompts, chunk {args.chunk}, 1 router + {args.model_workers} model "
        f"worker processes, medians of {args.runs} runs\n"
    )
    print("| stage | requests/s | p50 ms | p99 ms |\n|---|---|---|---|")
    labels = {
        "noop": "Celery no-op task (same broker)",
        "pipeline": "whole pipeline (submit -> Triton -> done)",
        "single": "one request alone, idle pipeline",
        "router_chunk_1": "router stage, 1 request per call",
        "router_chunk_n": f"router stage, {args.chunk} per call (per request)",
    }
    for name, row in medians.items():
        print(
            f"| {labels[name]} | {row['per_s']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "runs": results,
                    "medians": medians,
                },
                indent=2,
            )
        )
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
