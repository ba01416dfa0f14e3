"""One prompt a model server refuses (longer than its context window) fails alone: the
other requests of its chunk are answered, and the refused one fails with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from db.engine import make_engine, make_sessionmaker
from db.jobs import create_job, job_results
from db.migrate import upgrade
from router.synthetic import synthetic_zoo
from workers.inference import answer_chunk
from workers.provision import add_tenant, register_zoo
from workers.routing import PredictorCache, route_chunk
from workers.triton_client import connect
from workers.zoo_server import CONTEXT_BYTES, start_zoo_process


def test_a_refused_prompt_fails_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'messplus.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    data = synthetic_zoo(2000, seed=0).data
    prompts = list(data.prompts[:20])
    prompts[7] = "x" * (CONTEXT_BYTES + 1)
    with sessions.begin() as session:
        register_zoo(session, data)
        tenant_id = add_tenant(session, "acme", 0.6).id
        job_id, request_ids = create_job(session, tenant_id, prompts, "poison")
    with start_zoo_process(None) as zoo, connect(zoo.grpc_url) as client:
        publish = route_chunk(sessions, request_ids, np.random.default_rng(0), PredictorCache())
        for model, ids in publish.items():
            answer_chunk(sessions, client, model, ids, 64)
        # A message naming requests the router did not send to a model (forged or stale)
        # is answered and charged for nothing.
        for model in data.models:
            not_sent = sorted(set(request_ids) - set(publish.get(model, [])))
            assert answer_chunk(sessions, client, model, not_sent, 64).answered == 0
    with sessions.begin() as session:
        results = job_results(session, job_id, tenant_id)
    statuses = [r.status for r in results]
    assert statuses[7] == "failed"
    assert "context" in (results[7].failure_reason or "")
    assert statuses[:7] + statuses[8:] == ["done"] * 19
