"""The errors an inference call can end in, as the workers see them.

Workers decide from the class alone whether to retry, so tritonclient's exceptions (and the
socket errors its HTTP client lets through) are translated into these at the transport
boundary, workers/triton_client.py, and never leak past it.

An error's text is the operator's detail: the server's whole message (a backend's Python
traceback with its paths), the server's address. Tenants read why their request failed
(`messplus results`), and get `tenant_reason` instead: `unavailable`, or `rejected: ` and
one line of what the server said, with paths, addresses and URLs taken out.
"""

from __future__ import annotations

import re

__all__ = ["InferenceError", "InferenceRejected", "InferenceUnavailable", "one_line"]

MAX_REASON_CHARS = 160
# "ValueError: prompt too long", "c_python_backend_utils.TritonModelException: ..."
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exceeded|Warning): (.+)$")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[\w.@+-]+){2,}/?")
_HOST_PORT = re.compile(r"\b(?:[\w-]+\.)*[\w-]+:\d{2,5}\b")
_NOISE = ("Traceback (most recent call last)", "At:", "File ")


def one_line(message: str) -> str:
    """What a server's message says went wrong, in one line a tenant may read.

    A backend's traceback ends in the line that names the error; otherwise the first line
    of substance is taken. URLs, file paths and host:port pairs are replaced, and the line
    is cut to MAX_REASON_CHARS.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    raised = [m.group(1).strip() for line in lines if (m := _EXCEPTION_LINE.match(line))]
    raised = [text for text in raised if not text.startswith(_NOISE)]
    plain = [line for line in lines if not line.startswith(_NOISE)]
    line = raised[-1] if raised else (plain[0] if plain else "no reason given")
    line = _URL.sub("<url>", line)
    line = _PATH.sub("<path>", line)
    line = _HOST_PORT.sub("<server>", line)
    if len(line) > MAX_REASON_CHARS:
        line = line[: MAX_REASON_CHARS - 3].rstrip() + "..."
    return line


class InferenceError(Exception):
    """An inference call failed. Raised as this base class when the server failed in a way
    that is neither transient nor the request's fault (the model itself raised): fail the
    request with the message rather than retry blindly.

    `str(error)` is the detail for the operator's log; `summary` the server's own words
    (its message without the client's context), from which `tenant_reason` is made.
    """

    def __init__(self, detail: str, summary: str | None = None) -> None:
        super().__init__(detail)
        self.summary = detail if summary is None else summary

    @property
    def tenant_reason(self) -> str:
        """Why the request failed, as the tenant reads it (after the model's name)."""
        return f"rejected: {one_line(self.summary)}"


class InferenceUnavailable(InferenceError):
    """The server was unreachable, overloaded or too slow (connection refused, timeout,
    model not loaded yet). Transient: retry with backoff.
    """

    @property
    def tenant_reason(self) -> str:
        return "unavailable"


class InferenceRejected(InferenceError):
    """The server refused this request or answered outside the contract (unknown model, bad
    input, missing `text_output`). Sending the same request again cannot succeed.
    """
