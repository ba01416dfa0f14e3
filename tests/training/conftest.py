"""Fixtures for retraining: the CLI fixtures (a migrated database per test on SQLite and
Postgres, a runner of the real entry point) plus a deployment with a synthetic zoo whose
prompts carry their difficulty, so a trained predictor measurably beats base rates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from db.jobs import create_job
from db.models import Feedback, Request, utcnow
from db.pending_ratings import SubmittedRating
from router.synthetic import SyntheticZoo, synthetic_zoo
from tests.answered import rate_by_hand, store_answers
from tests.cli.conftest import (  # noqa: F401 - fixtures, registered by importing them
    broker,
    cli_env,
    db_url,
    migrated_sqlite_file,
    postgres,
    run,
    sessions,
)
from workers.feedback import FeedbackSummary
from workers.provision import add_tenant, register_zoo

N_PROMPTS = 1_500


@dataclass
class Deployment:
    """A registered zoo and one tenant; `rate` stores requests with their ratings."""

    sessions: sessionmaker[Session]
    zoo: SyntheticZoo
    model_ids: list[int]
    tenant_id: int

    def submit(self, prompts: Sequence[str]) -> list[int]:
        with self.sessions.begin() as session:
            return create_job(session, self.tenant_id, list(prompts), "test")[1]

    def answer(self, request_ids: Sequence[int]) -> None:
        """Store the served model's answer to routed requests, as its worker would."""
        with self.sessions.begin() as session:
            served = session.execute(
                select(Request.id, Request.served_model_id).where(Request.id.in_(request_ids))
            )
            store_answers(session, [(request_id, model_id) for request_id, model_id in served])

    def give(
        self, ratings: Sequence[tuple[int, bool]], tenant_id: int | None = None
    ) -> FeedbackSummary:
        """Rate served answers as users would: (request id, satisfied) each, checked and
        stored as submitting does, then applied as the feedback worker does."""
        tenant_id = self.tenant_id if tenant_id is None else tenant_id
        now = utcnow()
        submitted = [SubmittedRating(r, s, None, now) for r, s in ratings]
        return rate_by_hand(self.sessions, tenant_id, submitted)

    def rate(
        self,
        prompts: Sequence[str],
        satisfied: npt.NDArray[np.int8],
        known: npt.NDArray[np.bool_],
    ) -> list[int]:
        """Submit prompts and store each known label as a rating; returns request ids."""
        request_ids = self.submit(prompts)
        rows = [
            {
                "request_id": request_id,
                "model_id": self.model_ids[m],
                "tenant_id": self.tenant_id,
                "satisfied": bool(satisfied[r, m]),
            }
            for r, request_id in enumerate(request_ids)
            for m in np.flatnonzero(known[r])
        ]
        with self.sessions.begin() as session:
            session.execute(insert(Feedback), rows)
        return request_ids

    def rate_zoo(self, start: int = 0, stop: int = N_PROMPTS) -> list[int]:
        """Rate the zoo's prompts start:stop: every third request explored (all models
        rated), the others rated on one model, as a live router's feedback looks."""
        data = self.zoo.data
        n = stop - start
        known = np.zeros((n, data.n_models), dtype=bool)
        known[np.arange(n), np.arange(n) % data.n_models] = True
        known[::3] = True
        return self.rate(data.prompts[start:stop], data.satisfied[start:stop], known)


@pytest.fixture
def deployment(sessions: sessionmaker[Session]) -> Deployment:  # noqa: F811 - the fixture
    zoo = synthetic_zoo(N_PROMPTS, seed=7)
    with sessions.begin() as session:
        models = register_zoo(session, zoo.data)
        tenant_id = add_tenant(session, "acme", 0.7).id
    return Deployment(sessions, zoo, [m.id for m in models], tenant_id)
