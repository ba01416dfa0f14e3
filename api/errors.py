"""Every refusal in OpenAI's error shape: {"error": {"message", "type", "param", "code"}}.

Clients written for OpenAI read `error.message` and branch on the status code and
`error.code`; the official client raises its own exception class per status (400
BadRequestError, 401 AuthenticationError, 404 NotFoundError, 409 ConflictError, 413,
429 RateLimitError with Retry-After honoured, 5xx InternalServerError). Messages are one
line, name the parameter or line at fault, and never echo a prompt or a secret.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse

__all__ = ["ApiError", "bad_request", "error_response", "not_found"]

# OpenAI's error types by status.
_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
}


class ApiError(Exception):
    """A request refused or not answered, with what the client needs to know why."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def error_response(error: ApiError) -> JSONResponse:
    body: dict[str, object] = {
        "message": error.message,
        "type": _TYPES.get(error.status, "server_error"),
        "param": error.param,
        "code": error.code,
        **error.extra,
    }
    return JSONResponse({"error": body}, status_code=error.status, headers=error.headers)


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def not_found(what: str, object_id: str) -> ApiError:
    """The same 404 for ids that never existed and ids of other tenants: ids leak nothing."""
    return ApiError(404, f"No such {what}: {object_id!r}", code="not_found")
