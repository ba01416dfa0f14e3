"""What the HTTP API costs: uploads, the chat route's overhead, the API process's memory.

Starts a real deployment on this machine (a fresh Postgres database, Redis, the CPU Triton
zoo, one router and one model worker per zoo model, solo pools) and `messplus api serve`
(one uvicorn process), then measures:

- overhead: the same one-prompt chat request sent two ways, alternately, until each is
  answered: through POST /v1/chat/completions (an HTTP client with keep-alive), and
  "direct", as `messplus submit` does it (db.jobs.create_job, workers.publish.publish_route)
  from this process, waiting on the same job notifications the API waits on. The overhead
  is the difference of the two latency distributions (HTTP, key check, rate limit, body
  checks, the thread-pool hops): p50 and p99, on the idle pipeline (one request at a time)
  and with --clients concurrent clients per path;
- batch: a --lines-line batch file (chat lines) uploaded with POST /v1/files and made a
  batch with POST /v1/batches (each timed; issue 14 asks for both under 10 s together),
  then the time until the batch is completed;
- peak RSS (VmHWM) of the API process over the whole run.

    python -m bench.api [--lines 20000] [--requests 200] [--clients 32] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.pipeline import POSTGRES_ADMIN, REDIS_URL, percentile
from db.scratch import scratch_database

CHAT = "/v1/chat/completions"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _chat_body(prompt: str) -> dict[str, Any]:
    return {"model": "messplus", "messages": [{"role": "user", "content": prompt}]}


class Paths:
    """The two ways of sending one chat request, each returning its latency in seconds."""

    def __init__(self, url: str, key: str, tenant_id: int, chunk_size: int) -> None:
        import httpx2

        from api.calls import CHAT as ENDPOINT
        from api.calls import to_request
        from api.waiter import JobWaiter
        from workers import runtime

        self.http = httpx2.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
            limits=httpx2.Limits(max_connections=64, max_keepalive_connections=64),
        )
        self.sessions = runtime.sessions()
        self.waiter = JobWaiter(runtime.settings().database_url)
        self.tenant_id = tenant_id
        self.chunk_size = chunk_size
        self._to_request = lambda prompt: to_request(
            _chat_body(prompt), ENDPOINT, zoo=(), max_prompt_bytes=1 << 20, max_tokens=256
        )

    async def api(self, prompt: str) -> float:
        started = time.perf_counter()
        response = await self.http.post(CHAT, json=_chat_body(prompt))
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"API answered {response.status_code}: {response.text[:300]}")
        return elapsed

    async def direct(self, prompt: str) -> float:
        """As `messplus submit` submits: store the job, publish its ids, wait until done."""
        from db.jobs import create_job, job_progress
        from workers.publish import publish_route

        started = time.perf_counter()
        loop = asyncio.get_running_loop()

        def submit() -> str:
            with self.sessions.begin() as session:
                job_id, ids = create_job(session, self.tenant_id, [self._to_request(prompt)], CHAT)
            publish_route(ids, self.chunk_size)
            return job_id

        job_id = await loop.run_in_executor(None, submit)

        async def finished() -> bool:
            def read() -> bool:
                with self.sessions.begin() as session:
                    return job_progress(session, job_id, self.tenant_id).finished

            return await loop.run_in_executor(None, read)

        if not await self.waiter.wait(job_id, finished, 120):
            raise RuntimeError("direct request not answered in 120 s")
        return time.perf_counter() - started


async def _overhead(
    paths: Paths, prompts: list[str], requests: int, clients: int
) -> dict[str, Any]:
    """Latencies of both paths: alternating requests when idle; blocks per path, twice over,
    with `clients` concurrent clients each."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=2 * clients + 8))
    await paths.waiter.start()
    latency: dict[str, dict[str, list[float]]] = {
        "idle": {"api": [], "direct": []},
        "concurrent": {"api": [], "direct": []},
    }
    for i in range(requests):
        prompt = prompts[i % len(prompts)]
        for name in ("api", "direct") if i % 2 else ("direct", "api"):
            latency["idle"][name].append(await getattr(paths, name)(prompt))

    async def client(name: str, start: int, count: int) -> None:
        for j in range(count):
            prompt = prompts[(start + j) % len(prompts)]
            latency["concurrent"][name].append(await getattr(paths, name)(prompt))

    per_client = max(1, requests // clients)
    for _ in range(2):
        for name in ("direct", "api"):
            await asyncio.gather(*(client(name, c * 97, per_client) for c in range(clients)))
    await paths.waiter.stop()
    await paths.http.aclose()
    rows: dict[str, Any] = {}
    for scope, by_path in latency.items():
        row: dict[str, float] = {"clients": 1 if scope == "idle" else clients}
        for name, values in by_path.items():
            row[f"{name}_n"] = len(values)
            row[f"{name}_p50_ms"] = 1000 * percentile(values, 50)
            row[f"{name}_p99_ms"] = 1000 * percentile(values, 99)
        row["overhead_p50_ms"] = row["api_p50_ms"] - row["direct_p50_ms"]
        row["overhead_p99_ms"] = row["api_p99_ms"] - row["direct_p99_ms"]
        rows[scope] = row
    return rows


def _batch(url: str, key: str, prompts: list[str], lines: int) -> dict[str, float]:
    import httpx2

    content = "".join(
        json.dumps(
            {
                "custom_id": f"line-{i}",
                "method": "POST",
                "url": CHAT,
                "body": _chat_body(prompts[i % len(prompts)]),
            }
        )
        + "\n"
        for i in range(lines)
    ).encode()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx2.Client(base_url=url, headers=headers, timeout=600) as http:
        started = time.perf_counter()
        uploaded = http.post(
            "/v1/files", files={"file": ("bench.jsonl", content)}, data={"purpose": "batch"}
        )
        upload_s = time.perf_counter() - started
        uploaded.raise_for_status()
        started = time.perf_counter()
        created = http.post(
            "/v1/batches",
            json={
                "input_file_id": uploaded.json()["id"],
                "endpoint": CHAT,
                "completion_window": "24h",
            },
        )
        create_s = time.perf_counter() - started
        created.raise_for_status()
        batch_id = created.json()["id"]
        while http.get(f"/v1/batches/{batch_id}").json()["status"] == "in_progress":
            time.sleep(0.5)
        done_s = time.perf_counter() - started
        status = http.get(f"/v1/batches/{batch_id}").json()
    return {
        "lines": lines,
        "file_mb": len(content) / 1e6,
        "upload_s": upload_s,
        "create_s": create_s,
        "upload_and_create_s": upload_s + create_s,
        "completed_s": done_s,
        "completed": status["request_counts"]["completed"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api")
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200, help="per path and scope")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import redis

    from db.api_keys import create_key
    from workers import queues, runtime
    from workers.app import use_broker
    from workers.fleet import api_server, local_deployment
    from workers.provision import add_tenant, register_zoo
    from workers.zoo_server import load_zoo, start_zoo_process

    data = load_zoo(None)
    redis.Redis.from_url(REDIS_URL).flushdb()
    with (
        tempfile.TemporaryDirectory(prefix="messplus-bench-api-") as workdir,
        scratch_database(POSTGRES_ADMIN, "messplus_bench_api") as database_url,
        start_zoo_process(None) as zoo,
        local_deployment(
            Path(workdir),
            database_url=database_url,
            broker_url=REDIS_URL,
            triton_url=zoo.grpc_url,
            api_rate_per_s="100000",
            api_rate_burst="100000",
            router_seed="0",
        ) as fleet,
    ):
        use_broker(REDIS_URL)
        sessions = runtime.sessions()
        with sessions.begin() as session:
            register_zoo(session, data)
            tenant_id = add_tenant(session, "bench", 0.6).id
            key = create_key(session, tenant_id)[1]
        fleet.start("route", [queues.ROUTE])
        for model in data.models:
            fleet.start(f"model-{model}", [queues.model_queue(model)])
        prompts = list(data.prompts)
        log = Path(workdir) / "api.log"
        with api_server(fleet.environment, log, _free_port()) as (url, pid):
            paths = Paths(url, key, tenant_id, runtime.settings().chunk_size)
            overhead = asyncio.run(_overhead(paths, prompts, args.requests, args.clients))
            batch = _batch(url, key, prompts, args.lines)
            peak_mb = _vm_hwm_mb(pid)
        redis.Redis.from_url(REDIS_URL).flushdb()
    result = {"overhead": overhead, "batch": batch, "api_peak_rss_mb": peak_mb}
    print("| scope | clients | direct p50 / p99 ms | API p50 / p99 ms | overhead p50 / p99 ms |")
    print("|---|---|---|---|---|")
    for scope, row in overhead.items():
        print(
            f"| {scope} | {row['clients']} | {row['direct_p50_ms']:.1f} / "
            f"{row['direct_p99_ms']:.1f} | {row['api_p50_ms']:.1f} / {row['api_p99_ms']:.1f} | "
            f"{row['overhead_p50_ms']:.1f} / {row['overhead_p99_ms']:.1f} |"
        )
    print(
        f"\nbatch of {batch['lines']:,} lines ({batch['file_mb']:.1f} MB): upload "
        f"{batch['upload_s']:.2f} s + create {batch['create_s']:.2f} s = "
        f"{batch['upload_and_create_s']:.2f} s; completed after {batch['completed_s']:.1f} s "
        f"({batch['completed']:,} answers)\nAPI process peak RSS: {peak_mb:.0f} MB"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
