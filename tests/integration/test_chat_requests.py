"""Requests from the HTTP API through a model worker's stage on the real CPU Triton zoo:
a chat is sent rendered with the model's registered chat template (the default when none
is), and its sampling parameters reach Triton."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker
from db.jobs import NewRequest, create_job
from db.migrate import upgrade
from db.models import Response, ZooModel
from db.routing import Decision, claim_queued, record_decisions
from router.dataset import ZooData
from workers.chat import RequestParams
from workers.inference import answer_chunk
from workers.provision import add_tenant, register_zoo
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


def _answer(
    sessions: sessionmaker[Session], zoo: ZooProcess, model: str, request: NewRequest
) -> Response:
    """Store the request, route it to `model`, run the model stage; the stored answer."""
    with sessions.begin() as session:
        model_id = session.scalars(select(ZooModel.id).where(ZooModel.name == model)).one()
        _, (request_id,) = create_job(session, 1, [request], "test")
        claimed = claim_queued(session, [request_id])
        record_decisions(
            session,
            [
                Decision(
                    request_id=r.id,
                    tenant_id=r.tenant_id,
                    t=r.id,
                    probabilities=[0.5, 0.5, 0.5],
                    virtual_queue=0.0,
                    explored=False,
                    chosen_model_id=model_id,
                )
                for r in claimed
            ],
        )
    with connect(zoo.grpc_url) as client:
        answer_chunk(sessions, client, model, [request_id], max_tokens=64)
    with sessions.begin() as session:
        (response,) = session.scalars(select(Response).where(Response.request_id == request_id))
        return response


def _chat(prompt: str, **sampling: object) -> NewRequest:
    messages = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt})
    return NewRequest(prompt, "q", RequestParams(messages, **sampling).to_json())  # type: ignore[arg-type]


def test_a_chat_is_rendered_with_the_models_template(
    sessions: sessionmaker[Session], zoo: ZooProcess, synthetic_data: ZooData
) -> None:
    model, prompt = zoo.models[0], synthetic_data.prompts[5]
    # The zoo knows the prompt's exact text only: under the default template (role tags
    # around each message) it sees an unknown prompt and answers with a flagged fallback.
    assert "fallback" in _answer(sessions, zoo, model, _chat(prompt)).text
    with sessions.begin() as session:
        row = session.scalars(select(ZooModel).where(ZooModel.name == model)).one()
        row.chat_template = "{{ messages[-1]['content'] }}"
    answer = _answer(sessions, zoo, model, _chat(prompt))
    assert (answer.text, answer.finish_reason) == (f"[{model}] answer to #5", "stop")
    assert answer.prompt_tokens == len(prompt.split())


def test_sampling_parameters_reach_triton(
    sessions: sessionmaker[Session], zoo: ZooProcess, synthetic_data: ZooData
) -> None:
    model, prompt = zoo.models[1], synthetic_data.prompts[7]
    request = NewRequest(prompt, None, RequestParams(None, 2, 0.3, ()).to_json())
    cut = _answer(sessions, zoo, model, request)
    assert (cut.text, cut.tokens, cut.finish_reason) == (f"[{model}] answer", 2, "length")
    stopped = _answer(sessions, zoo, model, NewRequest(prompt, None, {"stop": ["to"]}))
    assert (stopped.text, stopped.finish_reason) == (f"[{model}] answer ", "stop")
