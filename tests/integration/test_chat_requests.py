"""Requests from the HTTP API through the router and a model worker's stage on the real
CPU Triton zoo: a chat is sent rendered with the model's registered chat template (the
default when none is), and its sampling parameters reach Triton."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker
from db.jobs import NewRequest, create_job
from db.migrate import upgrade
from db.models import Request, Response, ZooModel
from router.dataset import ZooData
from workers.chat import RequestParams
from workers.inference import answer_chunk
from workers.provision import add_tenant, register_zoo
from workers.routing import PredictorCache, route_chunk
from workers.triton_client import connect
from workers.zoo_server import ZooProcess

pytestmark = pytest.mark.services


@pytest.fixture
def sessions(tmp_path: Path, synthetic_data: ZooData) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    upgrade(url)
    made = make_sessionmaker(make_engine(url))
    with made.begin() as session:
        register_zoo(session, synthetic_data)
        add_tenant(session, "acme", 0.7)
    return made


def _answer(sessions: sessionmaker[Session], zoo: ZooProcess, request: NewRequest) -> Response:
    """Store the request, let the router decide it, run the model stage of the model it
    chose; the answer the user is served."""
    with sessions.begin() as session:
        _, (request_id,) = create_job(session, 1, [request], "test")
    publish = route_chunk(sessions, [request_id], np.random.default_rng(0), PredictorCache())
    with connect(zoo.grpc_url) as client:
        for model in publish:
            answer_chunk(sessions, client, model, [request_id], max_tokens=64)
    with sessions.begin() as session:
        served = session.scalars(select(Request.served_model_id).where(Request.id == request_id))
        return session.scalars(
            select(Response).where(
                Response.request_id == request_id, Response.model_id == served.one()
            )
        ).one()


def _chat(prompt: str, **sampling: object) -> NewRequest:
    messages = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt})
    return NewRequest(prompt, "q", RequestParams(messages, **sampling).to_json())  # type: ignore[arg-type]


def test_a_chat_is_rendered_with_the_models_template(
    sessions: sessionmaker[Session], zoo: ZooProcess, synthetic_data: ZooData
) -> None:
    prompt = synthetic_data.prompts[5]
    # The zoo knows the prompt's exact text only: under the default template (role tags
    # around each message) it sees an unknown prompt and answers with a flagged fallback.
    assert "fallback" in _answer(sessions, zoo, _chat(prompt)).text
    with sessions.begin() as session:
        for row in session.scalars(select(ZooModel)):
            row.chat_template = "{{ messages[-1]['content'] }}"
    answer = _answer(sessions, zoo, _chat(prompt))
    assert answer.text.endswith("] answer to #5") and answer.finish_reason == "stop"
    assert answer.prompt_tokens == len(prompt.split())


def test_sampling_parameters_reach_triton(
    sessions: sessionmaker[Session], zoo: ZooProcess, synthetic_data: ZooData
) -> None:
    prompt = synthetic_data.prompts[7]
    request = NewRequest(prompt, None, RequestParams(None, 2, 0.3, ()).to_json())
    cut = _answer(sessions, zoo, request)
    assert (cut.text.endswith("] answer"), cut.tokens, cut.finish_reason) == (True, 2, "length")
    stopped = _answer(sessions, zoo, NewRequest(prompt, None, {"stop": ["to"]}))
    assert stopped.text.endswith("] answer ") and stopped.finish_reason == "stop"
