"""Chat and text completion calls: their bodies checked, and turned into requests to store.

One set of rules for the interactive routes and for every line of a batch file, so a
body that is refused on one is refused on the other with the same words. Pydantic checks
the shape (unknown parameters are refused, not dropped: a client asking for `top_p` or
`logprobs` must learn it is not honoured); `to_request` checks what needs the deployment:
the model, the token limit, the prompt's size, and turns the body into the stored request
(the user's text for the router, the messages and sampling parameters for the model).

Model names: `messplus` is routed. A line naming a zoo model is refused, not pinned:
pinned answers would count in the tenant's SLA while the router had no say in them, so a
tenant pinning the cheapest model would leave the router to repay the debt on the rest of
its traffic with the largest model, at the tenant's cost, and pinning the largest would
buy satisfaction the SLA then credits to the router. The response's `model` still names
the zoo model that answered.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from db.jobs import NewRequest
from workers.chat import RequestParams, user_text
from workers.cli._input import prompt_of

__all__ = [
    "CHAT",
    "COMPLETIONS",
    "ENDPOINTS",
    "ROUTED_MODEL",
    "CallError",
    "ChatCompletionBody",
    "CompletionBody",
    "shape_error",
    "to_request",
]

ROUTED_MODEL = "messplus"
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
ENDPOINTS = (CHAT, COMPLETIONS)
MAX_STOP_SEQUENCES = 4  # OpenAI's limit


class CallError(ValueError):
    """A body that cannot be served: the message, the parameter, the status it deserves."""

    def __init__(
        self, message: str, *, param: str | None = None, status: int = 400, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.param = param
        self.status = status
        self.code = code


class _Body(BaseModel):
    # strict: "1" is not 1 and 1 is not true, as in OpenAI's own validation.
    model_config = ConfigDict(extra="forbid", strict=True)


class TextPart(_Body):
    type: Literal["text"]
    text: str


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]


class _Sampling(_Body):
    model: str = Field(description=f"`{ROUTED_MODEL}`: the router picks the zoo model")
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP_SEQUENCES)] | None = None
    n: Literal[1] | None = Field(None, description="only 1")
    stream: Literal[False] | None = Field(None, description="only false: no streaming")
    user: str | None = Field(None, description="accepted for compatibility, not stored")


class ChatCompletionBody(_Sampling):
    """POST /v1/chat/completions, and the body of a batch line to that endpoint."""

    messages: Annotated[list[Message], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None


class CompletionBody(_Sampling):
    """POST /v1/completions, and the body of a batch line to that endpoint."""

    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]


_BRANCH_LABELS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _param(loc: tuple[int | str, ...]) -> str:
    """OpenAI's spelling of a parameter path: messages[0].content. The names pydantic
    gives the branches of a union (`str`, `list[TextPart]`) are left out."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in _BRANCH_LABELS and "[" not in part:
            text += f".{part}" if text else part
    return text


def shape_error(exc: ValidationError) -> CallError:
    """One line for what pydantic refused, in OpenAI's words, naming the parameter."""
    errors = exc.errors(include_url=False)
    # Of a union's branches, the one that got past the type says the most (a list that is
    # too long, rather than "should be a valid string").
    error = next((e for e in errors if not e["type"].endswith("_type")), errors[0])
    param = _param(error["loc"]) or None
    if error["type"] == "extra_forbidden":
        return CallError(f"unsupported parameter {param!r}", param=param)
    if error["type"] == "missing":
        return CallError(f"missing required parameter {param!r}", param=param)
    if error["type"] == "value_error":  # a model validator's own words
        message = str(error["msg"]).removeprefix("Value error, ")
        return CallError(f"{param}: {message}" if param else message, param=param)
    return CallError(f"invalid {param!r}: {error['msg']}", param=param)


def _checked_text(text: str, max_prompt_bytes: int, param: str) -> str:
    """Emptiness, NUL, unpaired surrogates and size, in `messplus submit`'s words."""
    try:
        return prompt_of(text, max_prompt_bytes)
    except ValueError as exc:
        raise CallError(f"{param}: {exc}", param=param) from None


def _model(name: str, zoo: Collection[str]) -> None:
    if name == ROUTED_MODEL:
        return
    if name in zoo:
        raise CallError(
            f"model {name!r} is a zoo model: messplus routes every request to the cheapest "
            f"model that keeps your SLA, so ask for model {ROUTED_MODEL!r} (the answer names "
            "the zoo model that served it)",
            param="model",
            code="model_not_routable",
        )
    raise CallError(
        f"The model {name!r} does not exist; GET /v1/models lists them",
        param="model",
        status=404,
        code="model_not_found",
    )


def to_request(
    body: object,
    endpoint: str,
    *,
    zoo: Collection[str],
    max_prompt_bytes: int,
    max_tokens: int,
    custom_id: str | None = None,
) -> NewRequest:
    """The request to store for a call to `endpoint`; CallError saying what is wrong."""
    if not isinstance(body, dict):
        raise CallError("the body must be a JSON object")
    kind = ChatCompletionBody if endpoint == CHAT else CompletionBody
    try:
        call: Any = kind.model_validate(body)
    except ValidationError as exc:
        raise shape_error(exc) from None
    _model(call.model, zoo)
    limit = call.max_tokens
    if endpoint == CHAT and call.max_completion_tokens is not None:
        if limit is not None:
            raise CallError(
                "give max_tokens or max_completion_tokens, not both", param="max_tokens"
            )
        limit = call.max_completion_tokens
    if limit is not None and limit > max_tokens:
        raise CallError(
            f"max_tokens is {limit}, at most {max_tokens} (MESSPLUS_MAX_TOKENS)",
            param="max_tokens",
        )
    stop = (call.stop,) if isinstance(call.stop, str) else tuple(call.stop or ())
    if any(not s for s in stop):
        raise CallError("stop sequences must not be empty", param="stop")
    if endpoint == CHAT:
        messages = tuple(
            {
                "role": m.role,
                "content": m.content
                if isinstance(m.content, str)
                else "".join(part.text for part in m.content),
            }
            for m in call.messages
        )
        if not any(m["role"] == "user" for m in messages):
            raise CallError(
                "messages: at least one message must have role 'user'", param="messages"
            )
        prompt = _checked_text(user_text(messages), max_prompt_bytes, "messages")
        # Everything the model is sent counts against the prompt size, not just the user's.
        _checked_text("\n".join(m["content"] for m in messages), max_prompt_bytes, "messages")
        params = RequestParams(messages, limit, call.temperature, stop)
    else:
        text = call.prompt if isinstance(call.prompt, str) else call.prompt[0]
        prompt = _checked_text(text, max_prompt_bytes, "prompt")
        params = RequestParams(None, limit, call.temperature, stop)
    return NewRequest(prompt, custom_id, params.to_json() or None)
