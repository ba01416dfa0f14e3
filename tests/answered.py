"""Requests answered and rated by hand, as the router, a model worker and the feedback path
would leave them, for tests of what comes after without running those stages."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy.orm import Session, sessionmaker

from db.inference import ModelAnswer, mark_done, record_responses
from db.pending_ratings import SubmittedRating, check_ratings, store_ratings
from db.routing import Decision, claim_queued, record_decisions
from db.zoo import list_models
from workers.feedback import FeedbackSummary, apply_ratings


def store_answers(session: Session, answers: Collection[tuple[int, int]]) -> None:
    """Store an answer per (request id, model id), as a model worker does: a request is
    done once the answer it is served is stored."""
    record_responses(
        session,
        [
            ModelAnswer(
                request_id=request_id,
                model_id=model_id,
                text="an answer",
                tokens=2,
                latency_s=0.1,
                cost=1.0,
            )
            for request_id, model_id in answers
        ],
    )
    mark_done(session, sorted({request_id for request_id, _ in answers}))


def answer_by_hand(
    sessions: sessionmaker[Session],
    request_ids: Sequence[int],
    served_model_id: int,
    *,
    answered_by: Sequence[int] | None = None,
) -> None:
    """Route queued requests to `served_model_id` and store the answers of `answered_by`
    (default: the served model alone; more models means the router explored, so every
    model was asked). Requests whose served model answered are done."""
    answering = [served_model_id] if answered_by is None else list(answered_by)
    with sessions.begin() as session:
        n_models = len(list_models(session))
        record_decisions(
            session,
            [
                Decision(
                    request_id=request.id,
                    tenant_id=request.tenant_id,
                    t=request.id,
                    probabilities=[0.5] * n_models,
                    virtual_queue=0.0,
                    explored=answering != [served_model_id],
                    chosen_model_id=served_model_id,
                )
                for request in claim_queued(session, request_ids)
            ],
        )
        store_answers(session, [(r, m) for r in request_ids for m in answering])


def rate_by_hand(
    sessions: sessionmaker[Session], tenant_id: int, ratings: Sequence[SubmittedRating]
) -> FeedbackSummary:
    """Rate existing answers as submitting and then the feedback worker would, without a
    broker between them: checked, stored as pending, applied."""
    with sessions.begin() as session:
        model_ids, bad = check_ratings(session, tenant_id, ratings)
        assert bad == [], bad
        rating_ids = store_ratings(session, tenant_id, ratings, model_ids)
    return apply_ratings(sessions, rating_ids)
