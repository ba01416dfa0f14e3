"""Requests that arrive as OpenAI-style calls: what they carry beyond the prompt, and how a
chat's messages become the prompt a zoo model is sent.

A chat request keeps two texts apart. The router reads the user's own words
(`user_text`: every user message, in order), so a long system prompt or a template's
markup never makes a request look harder or easier than what the user asked. The model
gets the whole conversation rendered with *its* chat template (registered with the model,
`messplus zoo template`), because every model family expects its own markup; a model with
none registered uses DEFAULT_CHAT_TEMPLATE.

Templates are Jinja, as Hugging Face tokenizers ship them (`messages`,
`add_generation_prompt`, `bos_token`, `eos_token`), rendered in Jinja's immutable sandbox:
a template is operator input and must not reach Python internals.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "ROLES",
    "ChatTemplateError",
    "RequestParams",
    "check_template",
    "render_chat",
    "user_text",
]

# Role tags on their own lines, then the assistant's tag for the model to continue. Plain
# enough for any instruction-tuned model; register the model's own template for best results.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
ROLES = ("system", "developer", "user", "assistant")


class ChatTemplateError(ValueError):
    """A template that does not compile or fails to render a conversation."""


@dataclass(frozen=True, slots=True)
class RequestParams:
    """What a model worker needs besides the prompt, stored with the request as JSON.

    `messages` is set for chat requests (each {"role", "content"} with text content);
    None values leave the deployment's defaults (MESSPLUS_MAX_TOKENS, the server's own
    temperature, no stop sequences).
    """

    messages: tuple[Mapping[str, str], ...] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.messages is not None:
            body["messages"] = [dict(message) for message in self.messages]
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.stop:
            body["stop"] = list(self.stop)
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any] | None) -> RequestParams:
        if not body:
            return cls()
        messages = body.get("messages")
        return cls(
            messages=None if messages is None else tuple(dict(m) for m in messages),
            max_tokens=body.get("max_tokens"),
            temperature=body.get("temperature"),
            stop=tuple(body.get("stop", ())),
        )


def user_text(messages: Sequence[Mapping[str, str]]) -> str:
    """What the router reads of a chat: the user's messages, in order, a blank line apart."""
    return "\n\n".join(m["content"] for m in messages if m["role"] == "user")


@functools.lru_cache(maxsize=64)
def _compiled(template: str) -> Any:
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        return environment.from_string(template)
    except TemplateError as exc:
        raise ChatTemplateError(f"chat template does not compile: {exc}") from None


def render_chat(template: str | None, messages: Sequence[Mapping[str, str]]) -> str:
    """The prompt for a model whose chat template is `template` (None: the default)."""
    from jinja2 import TemplateError

    compiled = _compiled(DEFAULT_CHAT_TEMPLATE if template is None else template)
    try:
        return str(
            compiled.render(
                messages=[dict(m) for m in messages],
                add_generation_prompt=True,
                bos_token="",
                eos_token="",
            )
        )
    except TemplateError as exc:
        raise ChatTemplateError(f"chat template failed to render: {exc}") from None


def check_template(template: str) -> str:
    """The template, once it renders a small conversation to a non-empty prompt."""
    sample = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is two plus two?"},
    ]
    if not render_chat(template, sample).strip():
        raise ChatTemplateError("chat template renders an empty prompt")
    return template
