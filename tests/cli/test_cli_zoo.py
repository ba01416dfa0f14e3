"""`messplus zoo register|list|disable|enable|remove`: the database names the models Triton
serves, priced from the same data, checked against the Triton it points at; and what
taking a model out of the zoo does to the requests routed to it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.jobs import create_job
from db.models import Request, ZooModel
from db.tenants import get_tenant_by_name
from db.zoo import get_model_by_name, list_models
from router.dataset import write_csv
from router.synthetic import synthetic_zoo
from tests.cli.conftest import Run, one_error_line
from workers.inference import answer_chunk
from workers.routing import PredictorCache, route_chunk
from workers.triton_client import connect
from workers.zoo_server import ZooProcess


def _zoo(sessions: sessionmaker[Session]) -> list[tuple[str, str, int, float, float, str]]:
    with sessions.begin() as session:
        return [
            (
                m.name,
                m.triton_model_name,
                m.position,
                m.cost_per_request,
                m.cost_per_token,
                m.cost_unit,
            )
            for m in list_models(session)
        ]


def test_register_defaults_to_the_synthetic_zoo_triton_serves(
    run: Callable[..., Run], sessions: sessionmaker[Session], triton: ZooProcess
) -> None:
    assert "no models" in run("zoo", "list").out
    result = run("zoo", "register")
    assert result.code == 0, result
    data = synthetic_zoo(2000, seed=0).data
    mean = data.mean_cost()
    stored = _zoo(sessions)
    assert [row[:3] for row in stored] == [(m, m, i) for i, m in enumerate(data.models)]
    assert [row[3] for row in stored] == pytest.approx(list(mean))
    assert {row[4:] for row in stored} == {(0.0, "J")}
    # Registering again changes nothing; --unit relabels the costs.
    assert run("zoo", "register").code == 0
    assert _zoo(sessions) == stored
    assert run("zoo", "register", "--unit", "Wh").code == 0
    assert {row[5] for row in _zoo(sessions)} == {"Wh"}
    listing = run("zoo", "list").out.splitlines()
    assert len(listing) == 1 + data.n_models
    assert listing[1].split()[:3] == ["0", data.models[0], data.models[0]]


def test_register_reads_a_csv_in_column_order(
    run: Callable[..., Run], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    data = synthetic_zoo(
        40, seed=5, models=("b-small", "a-big"), skills=(0.0, 1.0), cost_j=(1.0, 9.0)
    ).data
    path = tmp_path / "zoo.csv"
    write_csv(data, path)
    assert run("zoo", "register", "--data", str(path), "--no-check").code == 0
    stored = _zoo(sessions)
    assert [(name, position) for name, _, position, *_ in stored] == [
        ("b-small", 0),
        ("a-big", 1),
    ]
    assert [row[3] for row in stored] == pytest.approx(list(data.mean_cost()))


def test_register_refuses_bad_data_and_units(run: Callable[..., Run], tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("doc_id,input_text\n1,hello\n")
    assert "no label columns" in one_error_line(run("zoo", "register", "--data", str(path)))
    missing = tmp_path / "missing.csv"
    assert "no such file" in one_error_line(run("zoo", "register", "--data", str(missing)))
    assert "--unit" in one_error_line(run("zoo", "register", "--unit", "x" * 17))


def _two_model_csv(tmp_path: Path) -> Path:
    data = synthetic_zoo(
        40, seed=5, models=("b-small", "a-big"), skills=(0.0, 1.0), cost_j=(1.0, 9.0)
    ).data
    path = tmp_path / "zoo.csv"
    write_csv(data, path)
    return path


def test_register_refuses_a_zoo_triton_does_not_serve(
    run: Callable[..., Run], sessions: sessionmaker[Session], triton: ZooProcess, tmp_path: Path
) -> None:
    """The issue's trap, reversed: the data names models the Triton it points at lacks."""
    line = one_error_line(run("zoo", "register", "--data", str(_two_model_csv(tmp_path))))
    served = ", ".join(sorted(triton.models))
    expected = f"b-small, a-big are not served by Triton at {triton.grpc_url} (it serves {served})"
    assert expected in line and "nothing registered" in line
    assert _zoo(sessions) == []


def test_register_refuses_when_triton_is_unreachable_unless_told_not_to_ask(
    run: Callable[..., Run], sessions: sessionmaker[Session]
) -> None:
    line = one_error_line(run("zoo", "register"))
    assert "Triton at grpc://127.0.0.1:1 is not reachable or not ready" in line
    assert "--no-check registers without asking" in line
    assert _zoo(sessions) == []
    result = run("zoo", "register", "--no-check")
    assert result.code == 0 and "not checked against Triton" in result.out
    assert len(_zoo(sessions)) == 3


def test_a_zoo_registered_by_mistake_is_removed_and_the_right_one_registered(
    run: Callable[..., Run], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    csv = str(_two_model_csv(tmp_path))
    assert run("zoo", "register", "--no-check").code == 0
    line = one_error_line(run("zoo", "register", "--data", csv, "--no-check"))
    assert "models would share a position (0: b-small, tiny-1b; 1: a-big, small-8b)" in line
    assert "tiny-1b, small-8b already hold positions" not in line  # sorted by name
    assert "small-8b, tiny-1b already hold positions this zoo needs" in line
    assert "`messplus zoo remove NAME` one registered by mistake" in line
    for model in ("tiny-1b", "small-8b", "large-70b"):
        result = run("zoo", "remove", model)
        assert result.out == f"model {model} removed from the zoo\n", result
    assert run("zoo", "register", "--data", csv, "--no-check").code == 0
    assert [row[0] for row in _zoo(sessions)] == ["b-small", "a-big"]
    assert "unknown model 'gpt-9'" in one_error_line(run("zoo", "remove", "gpt-9"))


def _route(
    sessions: sessionmaker[Session], prompts: list[str], to: str | None = None
) -> dict[str, list[int]]:
    """Submit prompts for acme and route them: by hand to `to`, or by the real router."""
    with sessions.begin() as session:
        tenant_id = get_tenant_by_name(session, "acme").id
        _, ids = create_job(session, tenant_id, prompts, "test")
    if to is None:
        return route_chunk(sessions, ids, np.random.default_rng(0), PredictorCache())
    from db.routing import Decision, claim_queued, record_decisions

    with sessions.begin() as session:
        model_id = get_model_by_name(session, to).id
        claimed = claim_queued(session, ids)
        record_decisions(
            session,
            [
                Decision(
                    request_id=r.id,
                    tenant_id=tenant_id,
                    t=r.id,
                    probabilities=[0.5, 0.5, 0.5],
                    virtual_queue=0.0,
                    explored=False,
                    chosen_model_id=model_id,
                )
                for r in claimed
            ],
        )
    return {to: ids}


def _waiting(run: Callable[..., Run]) -> dict[str, tuple[str, int]]:
    """`zoo list` as name -> (enabled, waiting)."""
    rows = [line.split() for line in run("zoo", "list").out.splitlines()[1:]]
    return {row[1]: (row[-2], int(row[-1])) for row in rows}


def test_a_disabled_model_still_answers_what_was_routed_to_it_and_gets_nothing_new(
    run: Callable[..., Run], sessions: sessionmaker[Session], triton: ZooProcess
) -> None:
    data = synthetic_zoo(2000, seed=0).data
    assert run("zoo", "register").code == 0
    # c = 1: every request is explored, so the router would send it to every enabled model.
    assert run("tenants", "add", "acme", "--alpha", "0.6", "--c", "1").code == 0
    waiting = _route(sessions, list(data.prompts[:2]), to="tiny-1b")["tiny-1b"]

    result = run("zoo", "disable", "tiny-1b")
    assert result.code == 0, result
    assert "routers stop choosing it, served or explored, from their next chunk" in result.out
    assert "2 request(s) routed to it before wait for its answer" in result.out
    assert _waiting(run)["tiny-1b"] == ("no", 2)

    published = _route(sessions, list(data.prompts[2:6]))
    assert set(published) == {"small-8b", "large-70b"}, published  # explored, all but tiny-1b

    with connect(triton.grpc_url) as client:
        outcome = answer_chunk(sessions, client, "tiny-1b", waiting, max_tokens=16)
    assert outcome.done == 2
    with sessions.begin() as session:
        statuses = session.scalars(select(Request.status).where(Request.id.in_(waiting)))
        assert set(statuses) == {"done"}
    assert _waiting(run)["tiny-1b"] == ("no", 0)

    result = run("zoo", "enable", "tiny-1b")
    assert result.code == 0 and "routers may choose it from their next chunk" in result.out
    assert "tiny-1b" in _route(sessions, [data.prompts[6]])


def test_disable_can_fail_the_requests_still_waiting(
    run: Callable[..., Run], sessions: sessionmaker[Session]
) -> None:
    assert run("zoo", "register", "--no-check").code == 0
    assert run("tenants", "add", "acme", "--alpha", "0.6").code == 0
    waiting = _route(sessions, ["a", "b"], to="small-8b")["small-8b"]
    result = run("zoo", "disable", "small-8b", "--fail-waiting")
    assert "2 request(s) routed to it failed with `small-8b: disabled`" in result.out, result
    with sessions.begin() as session:
        rows = session.execute(
            select(Request.status, Request.failure_reason).where(Request.id.in_(waiting))
        ).all()
    assert set(rows) == {("failed", "small-8b: disabled")}
    # It has history now: removing it is refused, with the way out.
    line = one_error_line(run("zoo", "remove", "small-8b"))
    assert "model small-8b has been routed 2 request(s)" in line
    assert "`messplus zoo disable small-8b` stops routing to it instead" in line


def test_enable_asks_triton_first(
    run: Callable[..., Run], sessions: sessionmaker[Session], triton: ZooProcess
) -> None:
    assert run("zoo", "register").code == 0
    assert run("zoo", "disable", "large-70b").code == 0
    with sessions.begin() as session:
        session.execute(
            update(ZooModel).where(ZooModel.name == "large-70b").values(triton_model_name="gone")
        )
    line = one_error_line(run("zoo", "enable", "large-70b"))
    assert "gone is not served by Triton" in line and "not enabled" in line
    assert _waiting(run)["large-70b"][0] == "no"
    assert run("zoo", "enable", "large-70b", "--no-check").code == 0
    assert _waiting(run)["large-70b"][0] == "yes"


def test_changing_the_enabled_models_says_what_it_does_to_the_predictor(
    run: Callable[..., Run], tmp_path: Path
) -> None:
    data = synthetic_zoo(60, seed=0).data
    write_csv(data, tmp_path / "zoo.csv")
    assert run("zoo", "register", "--no-check").code == 0
    assert run("train", str(tmp_path / "zoo.csv"), "--publish").code == 0
    result = run("zoo", "disable", "large-70b")
    assert "trained for 3 models and 2 are enabled" in result.out
    assert "`messplus retrain`" in result.out
    assert "trained for" not in run("zoo", "enable", "large-70b", "--no-check").out
