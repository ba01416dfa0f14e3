"""GET /healthz: can this process serve? Postgres answers and Redis answers.

No key needed, nothing about tenants told: load balancers and compose's health check ask.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import deployment

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="200 when Postgres and Redis answer, else 503")
def healthz(request: Request) -> Any:
    found = deployment(request)
    try:
        with found.sessions.begin() as session:
            session.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError:
        database = "unreachable"
    broker = "ok" if found.limiter.ping() else "unreachable"
    healthy = database == broker == "ok"
    body = {"status": "ok" if healthy else "unavailable", "database": database, "redis": broker}
    return JSONResponse(body, status_code=200 if healthy else 503)
