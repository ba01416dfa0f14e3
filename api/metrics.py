"""The API's Prometheus figures: requests by route, method and status, and their latency.

Counted like the workers' (workers.metrics): with MESSPLUS_METRICS_DIR set, each API
process writes its own files there and `messplus metrics serve` on the host adds them up
with the workers' figures; unset, they stay in memory. Routes are labelled by their
template (/v1/batches/{batch_id}), never by the path a client sent, so ids cannot explode
the number of series; paths that match no route count as "unmatched".
"""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers import metrics as worker_metrics

__all__ = ["ApiMetrics", "MetricsMiddleware"]

_LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)


class ApiMetrics:
    def __init__(self, directory: Path | None) -> None:
        worker_metrics.record_to(directory)  # sets where values live, for these too
        self.requests = Counter(
            "messplus_api_requests",
            "HTTP API requests, by route template, method and status code",
            ["route", "method", "status"],
            registry=None,
        )
        self.latency_s = Histogram(
            "messplus_api_request_seconds",
            "HTTP API request latency, from the request to the last byte of the response",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS_S,
            registry=None,
        )

    def close(self) -> None:
        worker_metrics.current().close()


class MetricsMiddleware:
    """Count and time every HTTP request (a pure ASGI middleware: no body buffering)."""

    def __init__(self, app: ASGIApp, instruments: ApiMetrics) -> None:
        self.app = app
        self.instruments = instruments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.instruments.requests.labels(route, method, str(status)).inc()
            self.instruments.latency_s.labels(route, method).observe(time.perf_counter() - started)
