"""Chat templates and request parameters (workers/chat.py): pure, no services."""

from __future__ import annotations

import pytest

from workers.chat import (
    DEFAULT_CHAT_TEMPLATE,
    ChatTemplateError,
    RequestParams,
    check_template,
    render_chat,
    user_text,
)

MESSAGES = (
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3+3?"},
)


def test_the_default_template_tags_each_role_and_asks_for_the_answer() -> None:
    assert render_chat(None, MESSAGES) == (
        "<|system|>\nBe brief.\n<|user|>\nWhat is 2+2?\n<|assistant|>\n4\n"
        "<|user|>\nAnd 3+3?\n<|assistant|>\n"
    )
    assert render_chat(DEFAULT_CHAT_TEMPLATE, MESSAGES) == render_chat(None, MESSAGES)


def test_the_router_reads_the_users_words_only() -> None:
    assert user_text(MESSAGES) == "What is 2+2?\n\nAnd 3+3?"


def test_a_hugging_face_style_template_renders() -> None:
    llama3 = (
        "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
        "<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    )
    rendered = render_chat(check_template(llama3), MESSAGES[:2])
    assert rendered.endswith(
        "What is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{% for m in messages %}", "does not compile"),
        ("{{ ''.__class__.__mro__ }}", "failed to render"),  # the sandbox refuses
        ("{{ messages[9]['content'] }}", "failed to render"),
        ("{% if false %}x{% endif %}", "renders an empty prompt"),
    ],
)
def test_bad_templates_are_refused(template: str, says: str) -> None:
    with pytest.raises(ChatTemplateError, match=says):
        check_template(template)


def test_params_round_trip_and_omit_defaults() -> None:
    params = RequestParams(MESSAGES, 16, 0.2, ("\n\n",))
    assert RequestParams.from_json(params.to_json()) == params
    assert RequestParams().to_json() == {}
    assert RequestParams.from_json(None) == RequestParams()
