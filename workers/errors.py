"""The errors an inference call can end in, as the workers see them.

Workers decide from the class alone whether to retry, so tritonclient's exceptions (and the
socket errors its HTTP client lets through) are translated into these at the transport
boundary, workers/triton_client.py, and never leak past it.
"""

from __future__ import annotations

__all__ = ["InferenceError", "InferenceRejected", "InferenceUnavailable"]


class InferenceError(Exception):
    """An inference call failed. Raised as this base class when the server failed in a way
    that is neither transient nor the request's fault (the model itself raised): fail the
    request with the message rather than retry blindly.
    """


class InferenceUnavailable(InferenceError):
    """The server was unreachable, overloaded or too slow (connection refused, timeout,
    model not loaded yet). Transient: retry with backoff.
    """


class InferenceRejected(InferenceError):
    """The server refused this request or answered outside the contract (unknown model, bad
    input, missing `text_output`). Sending the same request again cannot succeed.
    """
