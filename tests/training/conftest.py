"""Fixtures for retraining: the CLI fixtures (a migrated database per test on SQLite and
Postgres, a runner of the real entry point) plus a deployment with a synthetic zoo whose
prompts carry their difficulty, so a trained predictor measurably beats base rates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from db.jobs import create_job
from db.models import Feedback
from router.synthetic import SyntheticZoo, synthetic_zoo
from tests.cli.conftest import (  # noqa: F401 - fixtures, registered by importing them
    cli_env,
    db_url,
    migrated_sqlite_file,
    postgres,
    run,
    sessions,
)
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
