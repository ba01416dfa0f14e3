"""The model stage: answer a chunk of routed requests with one zoo model on Triton.

The prompts are read, sent to Triton in one batched call outside any transaction, and the
answers stored afterwards: inserted once per (request, model), so a redelivered chunk
stores and charges nothing twice, and a request completes when the answer it is served is
stored. A model that fails only fails the requests it serves; for requests it answers as
an explored extra, its label is simply missing. When the server refuses a batch, its
prompts are tried one by one, so one bad prompt fails alone.

Requests that came through the HTTP API carry parameters (workers.chat.RequestParams): a
chat's messages are rendered with this model's chat template into the prompt it is sent
(the stored prompt is the user's text, which the router read), and max_tokens,
temperature and stop go to Triton's sampling parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from db.inference import ModelAnswer, mark_done, mark_failed, record_responses
from db.model_stats import add_costs
from db.models import Request, RequestStatus, Response, ZooModel
from db.routing import asked
from db.zoo import get_model_by_name
from workers import metrics
from workers.chat import ChatTemplateError, RequestParams, render_chat
from workers.errors import InferenceError, InferenceRejected, InferenceUnavailable
from workers.triton_client import Completion, InferenceClient, Sampling

__all__ = ["InferOutcome", "answer_chunk", "fail_served"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferOutcome:
    """What one inference chunk did."""

    answered: int
    charged: int
    done: int


def _pending(session: Session, model: ZooModel, request_ids: Sequence[int]) -> list[Request]:
    """Requests of the chunk still waiting for this model's answer, in id order.

    Only requests whose routing decision asked this model (db.routing.asks): a message
    naming others, forged or stale, is answered and charged for nothing."""
    answered = exists().where(Response.request_id == Request.id, Response.model_id == model.id)
    return list(
        session.scalars(
            select(Request)
            .where(
                Request.id.in_(request_ids),
                Request.status.in_((RequestStatus.ROUTED.value, RequestStatus.DONE.value)),
                asked(model),
                ~answered,
            )
            .order_by(Request.id)
        )
    )


def _cost(model: ZooModel, completion: Completion) -> float:
    """The zoo's own measured cost when it reports one, else the model's price table."""
    if completion.cost is not None:
        return completion.cost
    return model.cost_per_request + model.cost_per_token * completion.tokens


def _model_inputs(
    model: ZooModel, rows: Sequence[tuple[int, str, dict[str, object] | None]]
) -> tuple[list[str], list[Sampling]]:
    """What this model is sent for each request: its prompt and its sampling settings.

    A chat template that cannot render a conversation is the request's problem as much as
    the model's: it is rejected (and fails alone, like a prompt the server refuses).
    """
    prompts, sampling = [], []
    for _, prompt, raw in rows:
        params = RequestParams.from_json(raw)
        if params.messages is not None:
            try:
                prompt = render_chat(model.chat_template, params.messages)
            except ChatTemplateError as exc:
                raise InferenceRejected(f"{model.name}: {exc}") from None
        prompts.append(prompt)
        sampling.append(Sampling(params.max_tokens, params.temperature, params.stop))
    return prompts, sampling


def answer_chunk(
    sessions: sessionmaker[Session],
    client: InferenceClient,
    model_name: str,
    request_ids: Sequence[int],
    max_tokens: int,
) -> InferOutcome:
    """Answer the chunk's pending requests with model_name; raises InferenceError on failure."""
    with sessions.begin() as session:
        model = get_model_by_name(session, model_name)
        rows = [(r.id, r.prompt, r.params) for r in _pending(session, model, request_ids)]
        model_id, triton_name = model.id, model.triton_model_name
        session.expunge(model)
    if not rows:
        return InferOutcome(0, 0, 0)
    pending = [(request_id, prompt) for request_id, prompt, _ in rows]
    try:
        prompts, sampling = _model_inputs(model, rows)
        with metrics.current().triton_call(model_name):
            completions = client.generate(triton_name, prompts, max_tokens, sampling)
    except InferenceUnavailable:
        raise
    except InferenceError:
        if len(pending) == 1:
            raise
        # One prompt the server refuses must not fail its whole chunk: answer each alone,
        # so only the requests that are refused on their own fail (with the reason).
        return _answer_one_by_one(sessions, client, model_name, pending, max_tokens)
    answers = [
        ModelAnswer(
            request_id=request_id,
            model_id=model_id,
            text=completion.text,
            tokens=completion.tokens,
            latency_s=completion.latency_s,
            cost=_cost(model, completion),
            would_satisfy=completion.would_satisfy,
            finish_reason=completion.finish_reason,
            prompt_tokens=completion.prompt_tokens,
        )
        for (request_id, _), completion in zip(pending, completions, strict=True)
    ]
    with sessions.begin() as session:
        new = record_responses(session, answers)
        charged = [a.cost for a in answers if (a.request_id, a.model_id) in new]
        add_costs(session, {model_id: (sum(charged), len(charged))} if charged else {})
        done = mark_done(session, [request_id for request_id, _ in pending])
    return InferOutcome(len(answers), len(charged), len(done))


def _answer_one_by_one(
    sessions: sessionmaker[Session],
    client: InferenceClient,
    model_name: str,
    pending: Sequence[tuple[int, str]],
    max_tokens: int,
) -> InferOutcome:
    answered = charged = done = 0
    for request_id, _ in pending:
        try:
            outcome = answer_chunk(sessions, client, model_name, [request_id], max_tokens)
        except InferenceUnavailable:
            raise
        except InferenceError as exc:
            fail_served(sessions, model_name, [request_id], exc)
            continue
        answered += outcome.answered
        charged += outcome.charged
        done += outcome.done
    return InferOutcome(answered, charged, done)


def fail_served(
    sessions: sessionmaker[Session],
    model_name: str,
    request_ids: Sequence[int],
    error: InferenceError,
) -> list[int]:
    """Fail the chunk's unfinished requests that this model was to serve; returns them.

    Their tenants read `<model>: unavailable` or `<model>: rejected: <one line>`; the
    server's whole message goes to this worker's log, for the operator."""
    reason = error.tenant_reason
    with sessions.begin() as session:
        model = get_model_by_name(session, model_name)
        served = session.scalars(
            select(Request.id).where(
                Request.id.in_(request_ids), Request.served_model_id == model.id
            )
        ).all()
        failed = mark_failed(session, list(served), f"{model_name}: {reason}")
    if failed:
        log.warning(
            "%s: %d requests failed (%s): %s",
            model_name,
            len(failed),
            reason.partition(":")[0],
            error,
            extra={"stage": "infer", "model": model_name, "request_ids": failed},
        )
    metrics.current().requests_failed(model_name, reason, len(failed))
    return failed
