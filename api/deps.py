"""What every route needs: the process's deployment, the caller's tenant, bounded bodies.

Order of checks on every /v1 route: the key (401), then its rate (429), then the body's
size (413) and type (415) and content (400): a client without a valid key learns nothing
else, and a limited client costs no body parsing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Message

from api.errors import ApiError, bad_request
from api.metrics import ApiMetrics
from api.ratelimit import RateLimiter
from api.waiter import JobWaiter
from db.api_keys import KEY_PREFIX, KeyOwner, key_owner
from workers.cli._input import decode_line
from workers.settings import Settings

__all__ = [
    "Deployment",
    "JsonBody",
    "Tenant",
    "deployment",
    "json_body",
    "limited",
    "require_media_type",
    "tenant",
]

# Room for the multipart framing, the file name and the purpose field around a file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


@dataclass
class Deployment:
    """One API process's view of the deployment, made at start-up (api.app)."""

    settings: Settings
    sessions: sessionmaker[Session]
    limiter: RateLimiter
    waiter: JobWaiter
    metrics: ApiMetrics

    @property
    def json_limit(self) -> int:
        """Largest JSON body: a prompt of MESSPLUS_MAX_PROMPT_BYTES escaped at worst
        (\\u0001 is 6 bytes for 1) with room for the rest of the call, and at least enough
        for 10,000 ratings in one feedback call."""
        return max(6 * self.settings.max_prompt_bytes + 64 * 1024, 2 * 1024 * 1024)

    @property
    def upload_limit(self) -> int:
        return self.settings.max_file_bytes + MULTIPART_OVERHEAD_BYTES


def deployment(request: Request) -> Deployment:
    found: Deployment = request.app.state.deployment
    return found


def tenant(request: Request) -> KeyOwner:
    """The tenant whose key signs the request, once its rate allows; 401 or 429 otherwise.

    Runs in the thread pool (it asks Postgres and Redis). The key is looked up on every
    request, so a revoked key fails on its next request in every API process."""
    import redis

    found = deployment(request)
    header = request.headers.get("authorization")
    if header is None:
        raise _unauthorized(
            f"You didn't provide an API key: send the header Authorization: Bearer {KEY_PREFIX}...",
            "missing_api_key",
        )
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or " " in secret:
        raise _unauthorized(
            "Malformed Authorization header: expected 'Bearer <API key>'",
            "invalid_authorization_header",
        )
    with found.sessions.begin() as session:
        owner = key_owner(session, secret)
    if owner is None:
        raise _unauthorized("Incorrect API key provided", "invalid_api_key")
    try:
        wait_s = found.limiter.wait_s(owner.key_id)
    except redis.RedisError as exc:
        raise ApiError(
            503, "rate limiter unavailable (Redis); try again shortly", code="unavailable"
        ) from exc
    if wait_s > 0:
        raise ApiError(
            429,
            f"Rate limit reached for this key ({found.settings.api_rate_per_s:g} requests/s, "
            f"bursts of {found.settings.api_rate_burst}); retry after {wait_s:.2f} s",
            code="rate_limit_exceeded",
            headers={"Retry-After": RateLimiter.retry_after(wait_s)},
        )
    return owner


def _unauthorized(message: str, code: str) -> ApiError:
    return ApiError(401, message, code=code, headers={"WWW-Authenticate": "Bearer"})


def limited(request: Request, limit: int) -> Request:
    """The request with a body that may not exceed `limit` bytes: 413 as soon as it does,
    without reading the rest (a Content-Length above it is refused before any byte)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    received = 0
    receive: Callable[[], Awaitable[Message]] = request.receive

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
        return message

    return Request(request.scope, counted)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body larger than {limit} bytes", code="request_too_large")


def require_media_type(request: Request, expected: str) -> None:
    """415 unless the body is declared as `expected` (parameters such as charset aside)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != expected:
        raise ApiError(
            415,
            f"Content-Type must be {expected}, got {media_type or 'none'!r}",
            code="unsupported_media_type",
        )


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, read strictly (see workers.cli._input.decode_line)."""
    require_media_type(request, "application/json")
    raw = await limited(request, deployment(request).json_limit).body()
    if not raw.strip():
        raise bad_request("the request body is empty: send a JSON object")
    try:
        value = decode_line(raw, constants=False)
    except ValueError as exc:
        raise bad_request(f"request body: {exc}", code="invalid_json") from None
    if not isinstance(value, dict):
        raise bad_request("the request body must be a JSON object")
    return value


# What routes declare: `owner: Tenant` (key checked, rate counted), `body: JsonBody`.
Tenant = Annotated[KeyOwner, Depends(tenant)]
JsonBody = Annotated[dict[str, Any], Depends(json_body)]
