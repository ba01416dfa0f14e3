"""Issue 12.6: tenants read why a request failed in one short line; the server's traceback,
paths, addresses and any credentials in MESSPLUS_TRITON_URL stay out of it, and credentials
stay out of the operator's detail too."""

from __future__ import annotations

import pytest

from workers.errors import InferenceError, InferenceRejected, InferenceUnavailable, one_line
from workers.triton_client import connect, masked_url

# What the CPU zoo's Triton said to a prompt over its context (PyTriton's Python backend).
TRITON_TRACEBACK = (
    "Failed to process the request(s) for model 'tiny-1b_0_0', message: TritonModelException: "
    "Model execute error: Traceback (most recent call last):\n"
    '  File "/tmp/folderlUU6hE/1/model.py", line 492, in execute\n'
    "    raise triton_responses_or_error\n"
    "c_python_backend_utils.TritonModelException: Traceback (most recent call last):\n"
    '  File "/work/wt/.venv/lib/python3.11/site-packages/pytriton/proxy/inference.py", '
    "line 393, in _handle_requests\n"
    '  File "/work/wt/workers/zoo_server.py", line 109, in answer\n'
    '    raise ValueError(f"prompt of {len(prompt.encode())} bytes exceeds the context")\n'
    "ValueError: prompt of 9000 bytes exceeds the context\n\n\n\nAt:\n"
    "  /tmp/folderlUU6hE/1/model.py(501): execute\n"
)


def test_a_backend_traceback_becomes_the_line_that_names_the_error() -> None:
    assert one_line(TRITON_TRACEBACK) == "prompt of 9000 bytes exceeds the context"


@pytest.mark.parametrize(
    ("message", "line"),
    [
        ("input too long for /models/llama/1/model.py", "input too long for <path>"),
        ("upstream triton.internal:8001 refused", "upstream <server> refused"),
        ("see http://admin:pw@10.0.0.5:8000/v2 for details", "see <url> for details"),
        ("\n\n", "no reason given"),
        ("x" * 500, "x" * 157 + "..."),
    ],
)
def test_paths_addresses_and_urls_are_taken_out(message: str, line: str) -> None:
    assert one_line(message) == line


def test_each_kind_of_failure_reads_as_the_issue_asks() -> None:
    assert InferenceUnavailable("grpc://h:1 infer 'm': refused").tenant_reason == "unavailable"
    rejected = InferenceRejected("grpc://h:1 infer 'm': bad input [400]", "bad input")
    assert rejected.tenant_reason == "rejected: bad input"
    assert InferenceError("detail", TRITON_TRACEBACK).tenant_reason == (
        "rejected: prompt of 9000 bytes exceeds the context"
    )


def test_urls_are_shown_with_their_credentials_masked() -> None:
    assert masked_url("grpc://user:s3cret@triton:8001") == "grpc://user:***@triton:8001"
    assert masked_url("http://t0ken@triton:8000") == "http://***@triton:8000"
    assert masked_url("grpc://triton:8001") == "grpc://triton:8001"


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_credentials_never_reach_an_error(scheme: str) -> None:
    """Nothing listens on port 1: the client's own error would quote the address."""
    url = f"{scheme}://user:s3cret@127.0.0.1:1"
    with connect(url, client_timeout_s=2) as client, pytest.raises(InferenceUnavailable) as caught:
        client.generate("tiny-1b", ["hello"], 8)
    assert "s3cret" not in str(caught.value) and "s3cret" not in caught.value.summary
    assert "***" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert caught.value.tenant_reason == "unavailable"
