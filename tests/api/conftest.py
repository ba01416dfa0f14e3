"""The HTTP API in this process (Starlette's TestClient drives the real ASGI app) against
a real Postgres database of its own, a claimed Redis database and the synthetic zoo's
rows; tenants `acme` and `rival` with a key each. No workers run here: what needs answers
is in tests/e2e/test_api.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, table
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.conftest import POSTGRES_ADMIN, claimed_redis_database, require_services

# Tables a refused request must leave as they were.
STORED = ("jobs", "requests", "api_files", "api_file_parts", "batches", "feedback", "api_keys")
TENANTS = ("acme", "rival")


@dataclass
class Api:
    """A running app, its database, and a key per tenant."""

    client: Any
    sessions: sessionmaker[Session]
    keys: dict[str, str]
    database_url: str
    broker_url: str

    def headers(self, tenant: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}

    def counts(self) -> dict[str, int]:
        with self.sessions.begin() as session:
            return {
                name: int(session.scalar(select(func.count()).select_from(table(name))) or 0)
                for name in STORED
            }


# Small limits, so the limits themselves can be tried; a fast rate so only the rate test
# meets it; a short wait, since nothing answers here.
SETTINGS = {
    "max_prompt_bytes": "2048",
    "max_file_bytes": str(1 << 20),
    "max_batch_lines": "100",
    "api_rate_per_s": "1000",
    "api_rate_burst": "1000",
    "api_wait_s": "0.5",
}


@contextmanager
def running_api(log_dir: Path, **settings: str) -> Iterator[Api]:
    """The app on a fresh database and broker, with the synthetic zoo and two tenants."""
    from fastapi.testclient import TestClient

    from db.api_keys import create_key
    from db.scratch import scratch_database
    from workers import runtime
    from workers.fleet import local_deployment
    from workers.provision import add_tenant, register_zoo
    from workers.zoo_server import load_zoo

    with (
        scratch_database(POSTGRES_ADMIN, "messplus_api") as database_url,
        claimed_redis_database() as broker_url,
        local_deployment(
            log_dir, database_url=database_url, broker_url=broker_url, **(SETTINGS | settings)
        ),
    ):
        from api.app import create_app

        sessions = runtime.sessions()
        keys = {}
        with sessions.begin() as session:
            register_zoo(session, load_zoo(None))
            for name in TENANTS:
                tenant = add_tenant(session, name, 0.7)
                keys[name] = create_key(session, tenant.id)[1]
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            yield Api(client, sessions, keys, database_url, broker_url)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    require_services()
    with running_api(tmp_path_factory.mktemp("api")) as running:
        yield running
