"""Issue 14's bad HTTP inputs: each kind gets its status code, a one-line message in
OpenAI's error shape, and stores nothing. `python -m tests.api.bad_http_inputs_table`
writes the table docs/api-bad-inputs.md (linked from the README) from these cases."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.services

CHAT = "/v1/chat/completions"
USER = [{"role": "user", "content": "What is two plus two?"}]
GOOD_CHAT = {"model": "messplus", "messages": USER}


@dataclass(frozen=True)
class Context:
    """Objects the cases refer to, made before any case is counted."""

    file_id: str  # an uploaded file of /v1/chat/completions lines
    cancelled_batch: str


@dataclass(frozen=True)
class Case:
    kind: str
    shown: str  # the request, as the table shows it
    send: Callable[[Api, Context], Any]
    status: int
    says: str


def _line(custom_id: str = "a", url: str = CHAT, **body: Any) -> str:
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": url, "body": body or GOOD_CHAT}
    )


def _chat(**body: Any) -> Callable[[Api, Context], Any]:
    return lambda api, _: api.client.post(CHAT, headers=api.headers(), json=body)


def _raw(path: str, content: bytes, content_type: str) -> Callable[[Api, Context], Any]:
    return lambda api, _: api.client.post(
        path, headers={**api.headers(), "Content-Type": content_type}, content=content
    )


def _upload(content: bytes | str, purpose: str = "batch") -> Callable[[Api, Context], Any]:
    data = content.encode() if isinstance(content, str) else content
    return lambda api, _: api.client.post(
        "/v1/files",
        headers=api.headers(),
        files={"file": ("in.jsonl", data)},
        data={"purpose": purpose},
    )


def _chunked_upload(size: int) -> Iterator[bytes]:
    """A multipart upload sent in chunks, so without a Content-Length to refuse it by."""
    yield (
        b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--b\r\n'
        b'Content-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n'
    )
    for _ in range(size // 50_000):
        yield b"x" * 50_000
    yield b"\r\n--b--\r\n"


def _feedback(**body: Any) -> Callable[[Api, Context], Any]:
    return lambda api, _: api.client.post("/v1/feedback", headers=api.headers(), json=body)


def _batch(**body: Any) -> Callable[[Api, Context], Any]:
    def send(api: Api, ctx: Context) -> Any:
        spec = {"input_file_id": ctx.file_id, "endpoint": CHAT, "completion_window": "24h"}
        return api.client.post("/v1/batches", headers=api.headers(), json={**spec, **body})

    return send


CASES = [
    Case("no API key", "GET /v1/models without Authorization",
         lambda api, _: api.client.get("/v1/models"), 401, "didn't provide an API key"),
    Case("malformed Authorization", "Authorization: Basic dXNl",
         lambda api, _: api.client.get("/v1/models", headers={"Authorization": "Basic dXNl"}),
         401, "Malformed Authorization header"),
    Case("wrong API key", "Authorization: Bearer msp-not-a-key",
         lambda api, _: api.client.get("/v1/models", headers={"Authorization": "Bearer msp-x"}),
         401, "Incorrect API key"),
    Case("unknown URL", "POST /v1/embeddings",
         lambda api, _: api.client.post("/v1/embeddings", headers=api.headers(), json={}),
         404, "Invalid URL (POST /v1/embeddings)"),
    Case("wrong method", "PUT /v1/batches",
         lambda api, _: api.client.put("/v1/batches", headers=api.headers(), json={}),
         405, "PUT is not allowed"),
    Case("bad JSON", "chat body `{\"model\": \"messplus\",`",
         _raw(CHAT, b'{"model": "messplus",', "application/json"), 400, "malformed JSON"),
    Case("wrong content type", "chat body as text/plain",
         _raw(CHAT, json.dumps(GOOD_CHAT).encode(), "text/plain"), 415,
         "Content-Type must be application/json"),
    Case("empty body", "chat, no body", _raw(CHAT, b"", "application/json"), 400,
         "request body is empty"),
    Case("JSON that is not an object", "chat body `[1, 2]`",
         _raw(CHAT, b"[1, 2]", "application/json"), 400, "must be a JSON object"),
    Case("key given twice", "chat body with `model` twice",
         _raw(CHAT, b'{"model": "messplus", "model": "x", "messages": []}', "application/json"),
         400, "key 'model' appears twice"),
    Case("NaN", "chat with `\"temperature\": NaN`",
         _raw(CHAT, b'{"model": "messplus", "messages": [], "temperature": NaN}',
              "application/json"), 400, "NaN is not a JSON value"),
    Case("huge body", "chat body of 2.5 MB", _raw(CHAT, b" " * 2_500_000, "application/json"),
         413, "request body larger than"),
    Case("missing messages", "chat without `messages`", _chat(model="messplus"), 400,
         "missing required parameter 'messages'"),
    Case("empty messages", "`\"messages\": []`", _chat(model="messplus", messages=[]), 400,
         "invalid 'messages'"),
    Case("unknown role", "a message with role `bot`",
         _chat(model="messplus", messages=[{"role": "bot", "content": "hi"}]), 400,
         "invalid 'messages[0].role'"),
    Case("no user message", "only a system message",
         _chat(model="messplus", messages=[{"role": "system", "content": "hi"}]), 400,
         "at least one message must have role 'user'"),
    Case("content not text", "`\"content\": 42`",
         _chat(model="messplus", messages=[{"role": "user", "content": 42}]), 400,
         "invalid 'messages[0].content'"),
    Case("image content", "a content part of type `image_url`",
         _chat(model="messplus", messages=[{"role": "user", "content": [
             {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]),
         400, "invalid 'messages[0].content[0].type'"),
    Case("NUL in a message", "content `a\\u0000b`",
         _chat(model="messplus", messages=[{"role": "user", "content": "a\x00b"}]), 400,
         "NUL character"),
    Case("prompt too large", "a user message of 3,000 bytes (limit 2,048)",
         _chat(model="messplus", messages=[{"role": "user", "content": "x" * 3000}]), 400,
         "at most 2048 (MESSPLUS_MAX_PROMPT_BYTES)"),
    Case("negative max_tokens", "`\"max_tokens\": -1`", _chat(**GOOD_CHAT, max_tokens=-1), 400,
         "invalid 'max_tokens'"),
    Case("max_tokens over the limit", "`\"max_tokens\": 100000`",
         _chat(**GOOD_CHAT, max_tokens=100_000), 400, "(MESSPLUS_MAX_TOKENS)"),
    Case("temperature out of range", "`\"temperature\": 5`", _chat(**GOOD_CHAT, temperature=5),
         400, "invalid 'temperature'"),
    Case("too many stop sequences", "`\"stop\"` with 5 strings",
         _chat(**GOOD_CHAT, stop=["a", "b", "c", "d", "e"]), 400, "invalid 'stop'"),
    Case("streaming", "`\"stream\": true`", _chat(**GOOD_CHAT, stream=True), 400,
         "invalid 'stream'"),
    Case("several choices", "`\"n\": 2`", _chat(**GOOD_CHAT, n=2), 400, "invalid 'n'"),
    Case("unsupported parameter", "`\"top_p\": 0.9`", _chat(**GOOD_CHAT, top_p=0.9), 400,
         "unsupported parameter 'top_p'"),
    Case("unknown model", "`\"model\": \"gpt-4o\"`", _chat(model="gpt-4o", messages=USER), 404,
         "The model 'gpt-4o' does not exist"),
    Case("a zoo model named", "`\"model\": \"tiny-1b\"` (refused, not pinned)",
         _chat(model="tiny-1b", messages=USER), 400, "is a zoo model"),
    Case("completion with two prompts", "/v1/completions `\"prompt\": [\"a\", \"b\"]`",
         lambda api, _: api.client.post("/v1/completions", headers=api.headers(),
                                        json={"model": "messplus", "prompt": ["a", "b"]}),
         400, "invalid 'prompt'"),
    Case("file not multipart", "POST /v1/files with a JSON body",
         _raw("/v1/files", b"{}", "application/json"), 415,
         "Content-Type must be multipart/form-data"),
    Case("wrong purpose", "purpose `fine-tune`", _upload(_line(), purpose="fine-tune"), 400,
         "purpose must be 'batch'"),
    Case("no file part", "multipart with `purpose` only",
         _raw("/v1/files",
              b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--b--\r\n',
              "multipart/form-data; boundary=b"),
         400, "missing form field 'file'"),
    Case("unknown form field", "multipart with a part named `other`",
         lambda api, _: api.client.post("/v1/files", headers=api.headers(),
                                        data={"purpose": "batch"},
                                        files={"other": ("x", b"")}),
         400, "unsupported form field(s): other"),
    Case("file too large", "a file of 1.1 MB (limit 1 MiB)",
         _upload(b"x" * 1_150_000), 413, "larger than"),
    Case("file too large, no Content-Length", "a chunked upload of 1.5 MB",
         lambda api, _: api.client.post(
             "/v1/files",
             headers={**api.headers(), "Content-Type": "multipart/form-data; boundary=b"},
             content=_chunked_upload(1_500_000)),
         413, "request body larger than"),
    Case("empty file", "a file of blank lines", _upload("\n\n"), 400, "has no lines"),
    Case("too many lines", "101 lines (limit 100)",
         _upload("\n".join(_line(str(i)) for i in range(101))), 400,
         "at most 100 per batch (MESSPLUS_MAX_BATCH_LINES)"),
    Case("bad lines, each numbered", "lines: malformed JSON, duplicate custom_id, GET, a bad body",
         _upload("\n".join([
             _line("a"), "{not json", _line("a"),
             json.dumps({"custom_id": "c", "method": "GET", "url": CHAT, "body": GOOD_CHAT}),
             _line("d", model="messplus", messages=[]),
         ])),
         400, "4 bad line(s), nothing stored: line 2: malformed JSON"),
    Case("lines calling two endpoints", "a chat line, then a /v1/completions line",
         _upload(_line("a") + "\n" + _line("b", url="/v1/completions",
                                              model="messplus", prompt="hi")),
         400, "differs from the file's first line"),
    Case("unknown input file", "`\"input_file_id\": \"file-nope\"`",
         _batch(input_file_id="file-nope"), 404, "No such file: 'file-nope'"),
    Case("unknown endpoint", "`\"endpoint\": \"/v1/embeddings\"`",
         _batch(endpoint="/v1/embeddings"), 400, "unsupported endpoint '/v1/embeddings'"),
    Case("endpoint not the file's", "a chat file as `/v1/completions`",
         _batch(endpoint="/v1/completions"), 400, "the file's lines call /v1/chat/completions"),
    Case("completion window", "`\"completion_window\": \"1h\"`", _batch(completion_window="1h"),
         400, "completion_window must be '24h'"),
    Case("metadata too large", "17 metadata keys",
         _batch(metadata={f"k{i}": "v" for i in range(17)}), 400, "invalid 'metadata'"),
    Case("unknown batch", "GET /v1/batches/batch_<32 zeros>",
         lambda api, _: api.client.get(f"/v1/batches/batch_{'0' * 32}", headers=api.headers()),
         404, "No such batch"),
    Case("malformed batch id", "GET /v1/batches/42",
         lambda api, _: api.client.get("/v1/batches/42", headers=api.headers()), 404,
         "No such batch: '42'"),
    Case("cancel twice", "POST /v1/batches/{cancelled}/cancel",
         lambda api, ctx: api.client.post(f"/v1/batches/{ctx.cancelled_batch}/cancel",
                                          headers=api.headers()),
         409, "is cancelled: only a batch in progress can be cancelled"),
    Case("bad page size", "GET /v1/batches?limit=0",
         lambda api, _: api.client.get("/v1/batches?limit=0", headers=api.headers()), 400,
         "invalid 'limit'"),
    Case("unknown file content", "GET /v1/files/file-nope/content",
         lambda api, _: api.client.get("/v1/files/file-nope/content", headers=api.headers()),
         404, "No such file"),
    Case("rating without a verdict", "POST /v1/feedback without `satisfied`",
         _feedback(response_id=f"chatcmpl-{'0' * 32}-0"), 400,
         "missing required parameter 'satisfied'"),
    Case("rating naming two answers", "`response_id` and `batch_id` + `custom_id`",
         _feedback(response_id="chatcmpl-x", batch_id="batch_x", custom_id="a",
                   satisfied=True), 400, "give response_id, or batch_id with custom_id"),
    Case("rating an unknown answer", "`\"response_id\": \"chatcmpl-<32 zeros>-0\"`",
         _feedback(response_id=f"chatcmpl-{'0' * 32}-0", satisfied=True), 404,
         "No such answer"),
    Case("ratings naming unknown lines", "`{\"ratings\": [...]}` with an unknown custom_id",
         _feedback(ratings=[{"batch_id": f"batch_{'0' * 32}", "custom_id": "q9",
                             "satisfied": False}]),
         400, "1 of 1 ratings refused, none stored: ratings[0]: no such custom_id 'q9'"),
    Case("rating a request with no answer", "a line of a cancelled batch (its request failed)",
         lambda api, ctx: api.client.post(
             "/v1/feedback", headers=api.headers(),
             json={"batch_id": ctx.cancelled_batch, "custom_id": "a", "satisfied": True}),
         409, "failed: it has no answer to rate"),
    Case("unknown answer id", "GET /v1/chat/completions/chatcmpl-nope",
         lambda api, _: api.client.get(f"{CHAT}/chatcmpl-nope", headers=api.headers()), 404,
         "No such completion"),
]  # fmt: skip


def make_context(api: Api) -> Context:
    uploaded = api.client.post(
        "/v1/files",
        headers=api.headers(),
        files={"file": ("good.jsonl", _line("a").encode())},
        data={"purpose": "batch"},
    )
    assert uploaded.status_code == 200, uploaded.text
    file_id = uploaded.json()["id"]
    spec = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h"}
    created = api.client.post("/v1/batches", headers=api.headers(), json=spec)
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    cancelled = api.client.post(f"/v1/batches/{batch_id}/cancel", headers=api.headers())
    assert cancelled.status_code == 200, cancelled.text
    return Context(file_id, batch_id)


@pytest.fixture(scope="module")
def context(api: Api) -> Context:
    return make_context(api)


def try_case(api: Api, context: Context, case: Case) -> tuple[Any, dict[str, int], dict[str, int]]:
    """The response to one case, with the stored rows counted before and after."""
    before = api.counts()
    response = case.send(api, context)
    return response, before, api.counts()


def test_there_are_at_least_25_kinds() -> None:
    assert len({case.kind for case in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_bad_input_is_refused_in_openai_shape_and_stores_nothing(
    api: Api, context: Context, case: Case
) -> None:
    response, before, after = try_case(api, context, case)
    assert response.status_code == case.status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert case.says in error["message"]
    assert "\n" not in error["message"]
    assert after == before
