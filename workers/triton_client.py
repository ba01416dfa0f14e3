"""The transport boundary between model workers and Triton Inference Server.

Workers see one small interface, `InferenceClient.generate`, and the project's own errors
(workers/errors.py); tritonclient, its two protocols and its exceptions stay in this module.
The tensor contract is the one production LLM servers speak (`text_input` BYTES ->
`text_output` BYTES, optional `max_tokens` INT32), so the same worker talks to a GPU server
and to the local CPU zoo (workers/zoo_server.py). The zoo adds `would_satisfy`, `cost` and
`tokens` outputs; a model without them gets `None` / an estimate and the caller prices the
tokens itself.

Each model's configuration is read once per client and decides what is sent: the batch
dimension (and the largest batch) from `max_batch_size`; the sampling settings inside vLLM's
`sampling_parameters` JSON where declared (max_tokens, temperature, stop), else max_tokens
as a tensor; and the optional vLLM inputs where declared: `exclude_input_in_output`
(without it the vLLM backend returns the prompt followed by the answer) and
`return_finish_reason`, `return_num_input_tokens`, `return_num_output_tokens` (r24.12 and
later), so finish reasons and token counts come from the server instead of an estimate.

Decoupled models (the vLLM backend's always are) answer on a response stream, which only
gRPC carries: each prompt of a chunk is one request on one stream, all in flight at once
so the server batches them itself.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from workers.errors import InferenceError, InferenceRejected, InferenceUnavailable

__all__ = [
    "DEFAULT_CLIENT_TIMEOUT_S",
    "DEFAULT_MAX_BATCH",
    "Completion",
    "InferenceClient",
    "Sampling",
    "connect",
    "contract_problem",
    "estimate_tokens",
    "masked_url",
    "serving_problems",
    "wait_until_ready",
]

DEFAULT_CLIENT_TIMEOUT_S = 60.0
DEFAULT_MAX_BATCH = 256
_DEFAULT_PORTS = {"grpc": 8001, "http": 8000}

TEXT_INPUT = "text_input"
TEXT_OUTPUT = "text_output"
MAX_TOKENS = "max_tokens"
SAMPLING_PARAMETERS = "sampling_parameters"
EXCLUDE_INPUT = "exclude_input_in_output"
# Flag inputs of the vLLM backend that switch on an output, by the output they switch on.
RETURN_FLAGS = {
    "finish_reason": "return_finish_reason",
    "num_input_tokens": "return_num_input_tokens",
    "num_output_tokens": "return_num_output_tokens",
}
OPTIONAL_OUTPUTS = ("would_satisfy", "cost", "tokens", *RETURN_FLAGS)
# Triton's configuration name of the BYTES type text travels in.
TEXT_TYPE = "TYPE_STRING"
SENT_INPUTS = frozenset(
    {TEXT_INPUT, MAX_TOKENS, SAMPLING_PARAMETERS, EXCLUDE_INPUT, *RETURN_FLAGS.values()}
)

# Status strings as tritonclient reports them: str(grpc.StatusCode) or the HTTP status code.
_TRANSIENT_STATUS = frozenset(
    {
        "StatusCode.UNAVAILABLE",
        "StatusCode.DEADLINE_EXCEEDED",
        "StatusCode.RESOURCE_EXHAUSTED",
        "StatusCode.ABORTED",
        "StatusCode.CANCELLED",
        "408",
        "429",
        "502",
        "503",
        "504",
    }
)
_REJECTED_STATUS = frozenset(
    {
        "StatusCode.INVALID_ARGUMENT",
        "StatusCode.NOT_FOUND",
        "StatusCode.FAILED_PRECONDITION",
        "StatusCode.OUT_OF_RANGE",
        "StatusCode.UNIMPLEMENTED",
        "StatusCode.PERMISSION_DENIED",
        "StatusCode.UNAUTHENTICATED",
        "StatusCode.ALREADY_EXISTS",
    }
)


@dataclass(frozen=True)
class Completion:
    """One model answer. `latency_s` is the wall time of the batched request that carried it;
    `cost` and `would_satisfy` are None when the server does not report them (real LLMs).
    """

    text: str
    tokens: int
    latency_s: float
    cost: float | None
    would_satisfy: bool | None
    finish_reason: str | None = None
    prompt_tokens: int | None = None


@dataclass(frozen=True)
class Sampling:
    """One prompt's generation settings; None leaves the call's max_tokens or the server's
    default. Temperature and stop sequences reach only servers that take vLLM's
    `sampling_parameters`; others get max_tokens alone."""

    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()

    def to_json(self, default_max_tokens: int) -> dict[str, object]:
        body: dict[str, object] = {"max_tokens": self.max_tokens or default_max_tokens}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.stop:
            body["stop"] = list(self.stop)
        return body


class InferenceClient(Protocol):
    """What a model worker needs from an inference server, and nothing more."""

    def generate(
        self,
        model: str,
        prompts: Sequence[str],
        max_tokens: int,
        sampling: Sequence[Sampling] | None = None,
    ) -> list[Completion]:
        """Answer every prompt with `model`, in order; `sampling`, if given, has one entry
        per prompt. Every server or network failure surfaces as an InferenceError
        (workers/errors.py); nothing of tritonclient leaks.
        """
        ...

    def close(self) -> None:
        """Release connections; open keep-alive connections delay a Triton shutdown."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@dataclass(frozen=True)
class _ModelInfo:
    """What the model's configuration says about how to call it."""

    max_batch_size: int
    inputs: frozenset[str]
    outputs: tuple[str, ...]
    # Answers through a response stream (the vLLM backend always is): gRPC streaming only.
    decoupled: bool = False


def estimate_tokens(text: str) -> int:
    """~4 bytes of English per token: enough to price answers from servers that do not count."""
    return math.ceil(len(text.encode("utf-8")) / 4)


def _translate_error(exc: BaseException, context: str) -> InferenceError:
    """Map a tritonclient or socket exception to the project's hierarchy (see workers/errors)."""
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, InferenceServerException):
        status = str(exc.status() or "")
        said = str(exc.message())
        message = f"{context}: {said} [{status or 'no status'}]"
        if status in _TRANSIENT_STATUS:
            return InferenceUnavailable(message, said)
        if status in _REJECTED_STATUS or (status.isdigit() and 400 <= int(status) < 500):
            return InferenceRejected(message, said)
        return InferenceError(message, said)
    # The HTTP client lets socket errors through (refused, reset, timed out) and reports a
    # connection closed mid-response as an HTTPException.
    said = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError | http.client.HTTPException):
        return InferenceUnavailable(f"{context}: {said}", said)
    return InferenceError(f"{context}: {said}", said)


def masked_url(url: str) -> str:
    """`url` as logs and errors show it: a password (or a user name alone, which may be a
    token) replaced by ***, as the database's URL is shown."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = "***" if parts.password is None else f"{parts.username}:***"
    return parts._replace(netloc=f"{user}@{host}").geturl()


def _hide_credentials(text: str, url: str) -> str:
    """`text` with the credentials of `url` replaced wherever they appear (tritonclient
    quotes the address it was given in its own errors)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    if not userinfo:
        return text
    text = text.replace(url, masked_url(url)).replace(f"{userinfo}@", "***@")
    return text.replace(parts.password, "***") if parts.password else text


def contract_problem(model: str, config: Mapping[str, Any], *, streams: bool = True) -> str | None:
    """Why a model with this Triton configuration cannot be called the way model workers
    call it (`text_input` BYTES -> `text_output` BYTES, nothing else required; a decoupled
    model only where the client `streams`, i.e. over gRPC), or None. The same check runs
    before a worker or a zoo registration is accepted and before the first inference, so a
    mismatch is found at start rather than as failed requests."""
    if config.get("model_transaction_policy", {}).get("decoupled") and not streams:
        return (
            f"model {model!r} is decoupled (answers on a stream), which only gRPC carries: "
            "reach it over a grpc:// Triton URL"
        )
    inputs = {str(spec["name"]): spec for spec in config.get("input", [])}
    outputs = {str(spec["name"]): spec for spec in config.get("output", [])}
    if TEXT_INPUT not in inputs or TEXT_OUTPUT not in outputs:
        return (
            f"model {model!r} does not speak {TEXT_INPUT} -> {TEXT_OUTPUT} "
            f"(inputs {sorted(inputs)}, outputs {sorted(outputs)})"
        )
    for name, spec in ((TEXT_INPUT, inputs[TEXT_INPUT]), (TEXT_OUTPUT, outputs[TEXT_OUTPUT])):
        if (kind := spec.get("data_type")) != TEXT_TYPE:
            return f"model {model!r}: {name} is {kind}, not {TEXT_TYPE} (BYTES)"
    required = sorted(
        n for n, spec in inputs.items() if n not in SENT_INPUTS and not spec.get("optional")
    )
    if required:
        return (
            f"model {model!r} requires input(s) {', '.join(required)} that messplus does not send"
        )
    return None


def _model_info(model: str, config: Mapping[str, Any], *, streams: bool) -> _ModelInfo:
    if problem := contract_problem(model, config, streams=streams):
        raise InferenceRejected(problem)
    inputs = frozenset(str(spec["name"]) for spec in config.get("input", []))
    declared = {str(spec["name"]) for spec in config.get("output", [])}
    outputs = (TEXT_OUTPUT, *(name for name in OPTIONAL_OUTPUTS if name in declared))
    decoupled = bool(config.get("model_transaction_policy", {}).get("decoupled"))
    return _ModelInfo(int(config.get("max_batch_size", 0)), inputs, outputs, decoupled)


def _column(outputs: Mapping[str, Any], name: str, n: int, model: str) -> npt.NDArray[Any] | None:
    """The first element per prompt of output `name` (beams or extra dims are dropped)."""
    raw = outputs.get(name)
    if raw is None:
        return None
    array = np.asarray(raw)
    if array.size == 0 or array.size % n:
        raise InferenceRejected(f"model {model!r}: output {name} has shape {array.shape} for {n}")
    return array.reshape(n, -1)[:, 0]


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _completions(
    model: str, outputs: Mapping[str, Any], n: int, latency_s: float
) -> list[Completion]:
    texts = _column(outputs, TEXT_OUTPUT, n, model)
    if texts is None:
        raise InferenceRejected(f"model {model!r} returned no {TEXT_OUTPUT}")
    satisfied = _column(outputs, "would_satisfy", n, model)
    cost = _column(outputs, "cost", n, model)
    # The server's own count first (vLLM), then the zoo's, then an estimate.
    tokens = _column(outputs, "num_output_tokens", n, model)
    if tokens is None:
        tokens = _column(outputs, "tokens", n, model)
    prompt_tokens = _column(outputs, "num_input_tokens", n, model)
    finish = _column(outputs, "finish_reason", n, model)
    completions = []
    for i in range(n):
        text = _text(texts[i])
        completions.append(
            Completion(
                text=text,
                tokens=int(tokens[i]) if tokens is not None else estimate_tokens(text),
                latency_s=latency_s,
                cost=float(cost[i]) if cost is not None else None,
                would_satisfy=bool(satisfied[i]) if satisfied is not None else None,
                finish_reason=_text(finish[i]) if finish is not None else None,
                prompt_tokens=int(prompt_tokens[i]) if prompt_tokens is not None else None,
            )
        )
    return completions


class _TritonClient:
    """The protocol-independent part: config cache, request shaping, splitting, decoding.

    tritonclient.grpc and tritonclient.http share their call signatures except for the
    timeout keyword and the config format, which the two subclasses supply.
    """

    # Whether the transport carries response streams, which decoupled models answer on.
    _streams = False

    def __init__(
        self, url: str, module: Any, client: Any, call_kwargs: dict[str, float], max_batch: int
    ) -> None:
        from tritonclient.utils import InferenceServerException

        self.url = url
        self._module = module
        self._client = client
        self._call_kwargs = call_kwargs
        self._max_batch = max_batch
        self._transport_errors = (InferenceServerException, OSError, http.client.HTTPException)
        self._infos: dict[str, _ModelInfo] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _fetch_config(self, model: str) -> Mapping[str, Any]:
        raise NotImplementedError

    def _call(self, context: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one tritonclient call, translating what it raises at this boundary.

        A server that is stopping or starting answers "unknown model" (NOT_FOUND) for the
        models it already unloaded or has not loaded yet. Such a refusal from a server that
        is not ready says nothing about the request: it is transient, not a rejection.
        """
        try:
            return fn(*args, **kwargs)
        except self._transport_errors as exc:
            error = _translate_error(exc, f"{masked_url(self.url)} {context}")
            if isinstance(error, InferenceRejected) and not self._server_ready():
                error = InferenceUnavailable(f"{error} (server not ready)", error.summary)
            if masked_url(self.url) == self.url:
                raise error from exc
            # tritonclient's exception quotes the credentials: it must not travel along.
            detail = _hide_credentials(str(error), self.url)
            raise type(error)(detail, _hide_credentials(error.summary, self.url)) from None

    def _server_ready(self) -> bool:
        try:
            return bool(self._client.is_server_ready(**self._call_kwargs))
        except self._transport_errors:
            return False

    def _info(self, model: str) -> _ModelInfo:
        info = self._infos.get(model)
        if info is None:
            config = self._call(f"config of {model!r}", self._fetch_config, model)
            info = self._infos[model] = _model_info(model, config, streams=self._streams)
        return info

    def not_ready(self, models: Sequence[str]) -> list[str]:
        """What cannot serve yet: the models, plus "server" while it is down or starting."""
        if not self._server_ready():
            return ["server", *models]
        try:
            return [m for m in models if not self._client.is_model_ready(m, **self._call_kwargs)]
        except self._transport_errors:
            return ["server", *models]

    def serving_problems(self, models: Sequence[str]) -> list[str]:
        """Why Triton cannot serve each model as workers call it; [] when it serves all."""
        if not self._server_ready():
            return [f"Triton at {masked_url(self.url)} is not reachable or not ready"]
        problems, missing = [], []
        for model in models:
            try:
                if not self._client.is_model_ready(model, **self._call_kwargs):
                    missing.append(model)
                    continue
                self._infos.pop(model, None)
                self._info(model)
            except InferenceError as exc:
                problems.append(str(exc))
            except self._transport_errors:
                missing.append(model)
        if missing:
            served = ", ".join(self._served_models()) or "no model it lists"
            verb = "is" if len(missing) == 1 else "are"
            names = ", ".join(missing)
            problems.insert(
                0,
                f"{names} {verb} not served by Triton at {masked_url(self.url)} "
                f"(it serves {served})",
            )
        return problems

    def _served_models(self) -> list[str]:
        """The models Triton reports statistics for: every loaded one. The repository
        index would be the natural source, but PyTriton leaves it empty."""
        try:
            stats = self._fetch_statistics()
        except self._transport_errors:
            return []
        return sorted({str(entry["name"]) for entry in stats.get("model_stats", [])})

    def _fetch_statistics(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def generate(
        self,
        model: str,
        prompts: Sequence[str],
        max_tokens: int,
        sampling: Sequence[Sampling] | None = None,
    ) -> list[Completion]:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if sampling is not None and len(sampling) != len(prompts):
            raise ValueError(f"{len(sampling)} sampling settings for {len(prompts)} prompts")
        if not prompts:
            return []
        settings = list(sampling) if sampling is not None else [Sampling()] * len(prompts)
        info = self._info(model)
        if info.decoupled:  # one stream request per prompt, a chunk's worth in flight at once
            piece = self._max_batch
        else:
            piece = min(self._max_batch, info.max_batch_size) if info.max_batch_size > 0 else 1
        completions: list[Completion] = []
        for start in range(0, len(prompts), piece):
            chunk = prompts[start : start + piece]
            chunk_settings = settings[start : start + piece]
            generate = self._generate_streamed if info.decoupled else self._generate_piece
            try:
                completions.extend(generate(model, info, chunk, chunk_settings, max_tokens))
            except InferenceError:
                # The server may have been restarted with another configuration.
                self._infos.pop(model, None)
                raise
        return completions

    def _request(
        self,
        info: _ModelInfo,
        prompts: Sequence[str],
        sampling: Sequence[Sampling],
        max_tokens: int,
    ) -> tuple[list[Any], list[Any]]:
        """The input tensors of one request carrying `prompts`, and the outputs to ask for."""
        from tritonclient.utils import np_to_triton_dtype

        n = len(prompts)
        shape = (n, 1) if info.max_batch_size > 0 else (1,)
        encoded = [prompt.encode("utf-8") for prompt in prompts]
        tensors: dict[str, npt.NDArray[Any]] = {
            TEXT_INPUT: np.array(encoded, dtype=np.object_).reshape(shape)
        }
        if SAMPLING_PARAMETERS in info.inputs:
            params = [json.dumps(s.to_json(max_tokens)).encode("utf-8") for s in sampling]
            tensors[SAMPLING_PARAMETERS] = np.array(params, dtype=np.object_).reshape(shape)
        elif MAX_TOKENS in info.inputs:
            limits = [s.max_tokens or max_tokens for s in sampling]
            tensors[MAX_TOKENS] = np.array(limits, dtype=np.int32).reshape(shape)
        flags = [EXCLUDE_INPUT] + [
            RETURN_FLAGS[name] for name in info.outputs if name in RETURN_FLAGS
        ]
        for flag in flags:
            if flag in info.inputs:
                tensors[flag] = np.full(shape, True, dtype=np.bool_)
        inputs = []
        for name, array in tensors.items():
            tensor = self._module.InferInput(name, list(shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [self._module.InferRequestedOutput(name) for name in info.outputs]
        return inputs, outputs

    def _generate_piece(
        self,
        model: str,
        info: _ModelInfo,
        prompts: Sequence[str],
        sampling: Sequence[Sampling],
        max_tokens: int,
    ) -> list[Completion]:
        n = len(prompts)
        inputs, outputs = self._request(info, prompts, sampling, max_tokens)
        started = time.perf_counter()
        result = self._call(
            f"infer {model!r}",
            self._client.infer,
            model,
            inputs,
            outputs=outputs,
            **self._call_kwargs,
        )
        latency_s = time.perf_counter() - started
        return _completions(
            model, {name: result.as_numpy(name) for name in info.outputs}, n, latency_s
        )

    def _generate_streamed(
        self,
        model: str,
        info: _ModelInfo,
        prompts: Sequence[str],
        sampling: Sequence[Sampling],
        max_tokens: int,
    ) -> list[Completion]:
        raise NotImplementedError  # contract_problem refuses decoupled models without streams


class _GrpcClient(_TritonClient):
    _streams = True

    def __init__(self, url: str, address: str, client_timeout_s: float, max_batch: int) -> None:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(address)
        super().__init__(url, grpcclient, client, {"client_timeout": client_timeout_s}, max_batch)
        self._timeout_s = client_timeout_s

    def _generate_streamed(
        self,
        model: str,
        info: _ModelInfo,
        prompts: Sequence[str],
        sampling: Sequence[Sampling],
        max_tokens: int,
    ) -> list[Completion]:
        """A decoupled model (the vLLM backend): one request per prompt on one gRPC stream,
        all in flight at once so the server batches them itself; each request's answer is
        the last response carrying outputs before its final flag (with `stream` unset, vLLM
        sends the whole answer in one)."""
        results: dict[str, Any] = {}
        pending = {str(i) for i in range(len(prompts))}
        errors: list[BaseException] = []
        finished = threading.Event()

        # tritonclient calls back with keyword arguments `result` and `error`.
        def collect(result: Any = None, error: BaseException | None = None) -> None:
            if error is not None:
                errors.append(error)
                finished.set()
                return
            response = result.get_response()
            if response.outputs:
                results[response.id] = result
            final = response.parameters.get("triton_final_response")
            if final is None or final.bool_param:
                pending.discard(response.id)
                if not pending:
                    finished.set()

        started = time.perf_counter()
        self._call(f"stream to {model!r}", self._client.start_stream, callback=collect)
        try:
            for i, (prompt, setting) in enumerate(zip(prompts, sampling, strict=True)):
                inputs, outputs = self._request(info, [prompt], [setting], max_tokens)
                self._call(
                    f"infer {model!r}",
                    self._client.async_stream_infer,
                    model,
                    inputs,
                    outputs=outputs,
                    request_id=str(i),
                    enable_empty_final_response=True,
                )
            if not finished.wait(self._timeout_s):
                raise InferenceUnavailable(
                    f"{self.url} infer {model!r}: {len(pending)} of {len(prompts)} answers "
                    f"missing after {self._timeout_s:g} s"
                )
        finally:
            self._client.stop_stream(cancel_requests=bool(pending))
        if errors:
            raise _translate_error(errors[0], f"{self.url} infer {model!r}") from errors[0]
        latency_s = time.perf_counter() - started
        completions = []
        for i in range(len(prompts)):
            result = results.get(str(i))
            if result is None:
                raise InferenceRejected(f"model {model!r} sent no answer to a request")
            values = {name: result.as_numpy(name) for name in info.outputs}
            completions.extend(_completions(model, values, 1, latency_s))
        return completions

    def _fetch_config(self, model: str) -> Mapping[str, Any]:
        response = self._client.get_model_config(model, as_json=True, **self._call_kwargs)
        return response["config"]  # type: ignore[no-any-return]

    def _fetch_statistics(self) -> Mapping[str, Any]:
        return self._client.get_inference_statistics(as_json=True, **self._call_kwargs)  # type: ignore[no-any-return]


class _HttpClient(_TritonClient):
    """tritonclient.http runs on gevent: use one instance per thread."""

    def __init__(self, url: str, address: str, client_timeout_s: float, max_batch: int) -> None:
        import tritonclient.http as httpclient

        client = httpclient.InferenceServerClient(
            address, connection_timeout=client_timeout_s, network_timeout=client_timeout_s
        )
        super().__init__(url, httpclient, client, {}, max_batch)

    def _fetch_config(self, model: str) -> Mapping[str, Any]:
        return self._client.get_model_config(model)  # type: ignore[no-any-return]

    def _fetch_statistics(self) -> Mapping[str, Any]:
        return self._client.get_inference_statistics()  # type: ignore[no-any-return]


def _open(url: str, client_timeout_s: float, max_batch: int) -> _TritonClient:
    if client_timeout_s <= 0:
        raise ValueError(f"client_timeout_s must be > 0, got {client_timeout_s}")
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(
            f"expected grpc://HOST[:PORT] or http://HOST[:PORT], got {masked_url(url)!r}"
        )
    address = parts.netloc if parts.port else f"{parts.netloc}:{_DEFAULT_PORTS[parts.scheme]}"
    kind = _GrpcClient if parts.scheme == "grpc" else _HttpClient
    return kind(url, address, client_timeout_s, max_batch)


def connect(
    url: str,
    *,
    client_timeout_s: float = DEFAULT_CLIENT_TIMEOUT_S,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> InferenceClient:
    """A client for `grpc://host:port` (Triton's default 8001) or `http://host:port` (8000).

    Nothing is contacted until the first call. `client_timeout_s` bounds every call;
    `max_batch` caps the prompts sent in one request (the model's own maximum also applies).
    The client is a context manager; close it before stopping a local server.
    """
    return _open(url, client_timeout_s, max_batch)


def serving_problems(url: str, models: Sequence[str], timeout_s: float = 5.0) -> list[str]:
    """Why the Triton at `url` cannot serve `models` (Triton model names) the way model
    workers call them: unreachable or not ready, a model not loaded (with the models it
    does serve), or another tensor contract (contract_problem). [] when it serves all."""
    with _open(url, timeout_s, DEFAULT_MAX_BATCH) as client:
        return client.serving_problems(models)


def wait_until_ready(url: str, models: Iterable[str], timeout_s: float = 60.0) -> None:
    """Block until the server and every model in `models` report ready.

    Raises InferenceUnavailable naming the models still missing after `timeout_s`.
    """
    models = list(models)
    deadline = time.monotonic() + timeout_s
    with _open(url, min(5.0, max(timeout_s, 0.1)), DEFAULT_MAX_BATCH) as client:
        while True:
            missing = client.not_ready(models)
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise InferenceUnavailable(
                    f"{masked_url(url)}: not ready after {timeout_s:g} s: {', '.join(missing)}"
                )
            time.sleep(0.1)
