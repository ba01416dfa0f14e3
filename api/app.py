"""The ASGI application: `uvicorn --factory api.app:create_app` (`messplus api serve`).

create_app reads the MESSPLUS_* settings, opens the engine, the rate limiter's Redis and
the metrics instruments once per process; the lifespan starts and stops the listener that
wakes waiting chat calls. Every error, including the framework's own (unknown URL, wrong
method, bad query parameter), leaves in OpenAI's error shape (api.errors).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from api.deps import Deployment
from api.errors import ApiError, error_response
from api.metrics import ApiMetrics, MetricsMiddleware
from api.ratelimit import RateLimiter
from api.routes import batches, completions, feedback, files, health, models
from api.waiter import JobWaiter
from workers import runtime
from workers.settings import SettingsError, api_broker_problem

__all__ = ["create_app"]

log = logging.getLogger(__name__)

DESCRIPTION = """OpenAI-compatible Batch, Files and Chat API in front of the messplus router.

Authenticate with `Authorization: Bearer <key>` (`messplus tenants keys create NAME`).
Ask for model `messplus`: each request is routed to the cheapest zoo model that keeps
your SLA, and the answer's `model` names the one that served it."""


def _deployment() -> Deployment:
    settings = runtime.settings()
    if problem := api_broker_problem(settings.broker_url):
        raise SettingsError(problem)
    directory = None if settings.metrics_dir is None else Path(settings.metrics_dir)
    return Deployment(
        settings=settings,
        sessions=runtime.sessions(),
        limiter=RateLimiter(settings.broker_url, settings.api_rate_per_s, settings.api_rate_burst),
        waiter=JobWaiter(settings.database_url),
        metrics=ApiMetrics(directory),
    )


def create_app() -> FastAPI:
    found = _deployment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await found.waiter.start()
        try:
            yield
        finally:
            await found.waiter.stop()
            found.limiter.close()
            found.metrics.close()
            runtime.close()

    app = FastAPI(
        title="messplus",
        version="1",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.deployment = found
    for module in (health, models, files, batches, completions, feedback):
        app.include_router(module.router)
    app.add_middleware(MetricsMiddleware, instruments=found.metrics)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            error = ApiError(
                404, f"Invalid URL ({request.method} {request.url.path})", code="unknown_url"
            )
        elif exc.status_code == 405:
            error = ApiError(
                405,
                f"{request.method} is not allowed on {request.url.path}",
                code="method_not_allowed",
            )
        else:  # e.g. a multipart body the parser refuses
            error = ApiError(exc.status_code, str(exc.detail), code="invalid_request")
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _query_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        param = str(first["loc"][-1]) if first.get("loc") else None
        return error_response(ApiError(400, f"invalid {param!r}: {first['msg']}", param=param))

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return error_response(
            ApiError(503, "the database is unavailable; try again shortly", code="unavailable")
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return error_response(ApiError(500, "internal error", code="internal_error"))

    return app
