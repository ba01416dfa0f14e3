"""The zoo: upserts by name, position order, reordering under the unique constraint."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.errors import InvalidValue, ModelInUse, PositionTaken, UnknownModel
from db.inference import ModelAnswer, mark_done, record_responses
from db.models import ZooModel
from db.zoo import (
    ModelSpec,
    get_model_by_name,
    list_models,
    remove_model,
    set_enabled,
    upsert_models,
    waiting_requests,
)


def _names(session: Session) -> list[str]:
    return [model.name for model in list_models(session)]


def _mistral(position: int) -> ModelSpec:
    """A model the zoo fixture does not have, asking for `position`."""
    return ModelSpec(
        name="mistral-7b",
        triton_model_name="mistral",
        position=position,
        cost_per_request=3.0,
        cost_per_token=0.0,
        cost_unit="J",
    )


def test_upsert_creates_models_in_position_order(
    sessions: sessionmaker[Session], zoo_specs: list[ModelSpec]
) -> None:
    with sessions.begin() as session:
        models = upsert_models(session, list(reversed(zoo_specs)))
        assert [m.name for m in models] == ["llama-1b", "llama-8b", "llama-70b"]
        assert [m.position for m in models] == [0, 1, 2]
    with sessions.begin() as session:
        assert _names(session) == ["llama-1b", "llama-8b", "llama-70b"]
        big = get_model_by_name(session, "llama-70b")
        assert (big.triton_model_name, big.cost_per_request, big.cost_unit) == (
            "triton-llama-70b",
            20.0,
            "J",
        )
        assert big.enabled


def test_upsert_updates_by_name_and_keeps_unnamed_models(
    sessions: sessionmaker[Session], zoo: list[ZooModel], zoo_specs: list[ModelSpec]
) -> None:
    cheaper = dataclasses.replace(zoo_specs[2], cost_per_request=15.0, enabled=False)
    with sessions.begin() as session:
        models = upsert_models(session, [cheaper])
        assert [m.id for m in models] == [m.id for m in zoo]
    with sessions.begin() as session:
        big = get_model_by_name(session, "llama-70b")
        assert (big.cost_per_request, big.enabled) == (15.0, False)
        assert _names(session) == ["llama-1b", "llama-8b", "llama-70b"]


def test_swapping_positions(
    sessions: sessionmaker[Session], zoo: list[ZooModel], zoo_specs: list[ModelSpec]
) -> None:
    swap = [
        dataclasses.replace(zoo_specs[0], position=1),
        dataclasses.replace(zoo_specs[1], position=0),
    ]
    with sessions.begin() as session:
        upsert_models(session, swap)
    with sessions.begin() as session:
        assert _names(session) == ["llama-8b", "llama-1b", "llama-70b"]


def test_position_clash_is_refused_and_changes_nothing(
    sessions: sessionmaker[Session], zoo: list[ZooModel], zoo_specs: list[ModelSpec]
) -> None:
    newcomer = _mistral(1)
    with sessions.begin() as session, pytest.raises(InvalidValue, match="1: llama-8b, mistral-7b"):
        upsert_models(session, [newcomer])
    with sessions.begin() as session:
        assert _names(session) == ["llama-1b", "llama-8b", "llama-70b"]


def test_bad_specs(sessions: sessionmaker[Session], zoo_specs: list[ModelSpec]) -> None:
    with sessions.begin() as session:
        with pytest.raises(InvalidValue, match="more than once"):
            upsert_models(session, [zoo_specs[0], zoo_specs[0]])
        with pytest.raises(InvalidValue, match="negative"):
            upsert_models(session, [dataclasses.replace(zoo_specs[0], position=-1)])
        with pytest.raises(UnknownModel, match="gpt-9"):
            get_model_by_name(session, "gpt-9")


def test_a_disabled_model_makes_way_for_a_newcomer_at_its_position(
    sessions: sessionmaker[Session], zoo: list[ZooModel]
) -> None:
    """A zoo registered by mistake, then disabled, does not block registering the right one."""
    newcomer = _mistral(1)
    with sessions.begin() as session:
        set_enabled(session, "llama-8b", False)
    with sessions.begin() as session:
        upsert_models(session, [newcomer])
    with sessions.begin() as session:
        assert _names(session) == ["llama-1b", "mistral-7b", "llama-70b", "llama-8b"]
        assert not get_model_by_name(session, "llama-8b").enabled


def test_a_position_clash_names_the_enabled_models_in_the_way(
    sessions: sessionmaker[Session], zoo: list[ZooModel]
) -> None:
    spec = _mistral(0)
    with sessions.begin() as session, pytest.raises(PositionTaken) as caught:
        upsert_models(session, [spec])
    assert caught.value.in_the_way == ["llama-1b"]


def test_enable_and_disable_by_name(sessions: sessionmaker[Session], zoo: list[ZooModel]) -> None:
    with sessions.begin() as session:
        assert not set_enabled(session, "llama-70b", False).enabled
    with sessions.begin() as session:
        assert [m.enabled for m in list_models(session)] == [True, True, False]
        assert set_enabled(session, "llama-70b", True).enabled
        with pytest.raises(UnknownModel, match="gpt-9"):
            set_enabled(session, "gpt-9", True)


def test_waiting_counts_routed_requests_the_model_still_owes_their_answer(
    sessions: sessionmaker[Session],
    zoo: list[ZooModel],
    submit: Callable[[list[str]], list[int]],
    route: Callable[..., list[int]],
) -> None:
    small, medium, _ = zoo
    first, second, third = submit(["a", "b", "c"])
    route([first, second], small.id)
    route([third], medium.id)
    with sessions.begin() as session:
        assert waiting_requests(session, small.id) == [first, second]
        record_responses(
            session,
            [
                ModelAnswer(
                    request_id=first, model_id=small.id, text="x", tokens=1, latency_s=0.1, cost=1.0
                )
            ],
        )
        mark_done(session, [first])
    with sessions.begin() as session:
        assert waiting_requests(session, small.id) == [second]
        assert waiting_requests(session, medium.id) == [third]


def test_only_a_model_that_never_served_can_be_removed(
    sessions: sessionmaker[Session],
    zoo: list[ZooModel],
    submit: Callable[[list[str]], list[int]],
    route: Callable[..., list[int]],
) -> None:
    small = zoo[0]
    route(submit(["a"]), small.id)
    with (
        sessions.begin() as session,
        pytest.raises(ModelInUse, match="llama-1b has been routed 1 request"),
    ):
        remove_model(session, "llama-1b")
    with sessions.begin() as session:
        remove_model(session, "llama-70b")
    with sessions.begin() as session:
        assert _names(session) == ["llama-1b", "llama-8b"]
        with pytest.raises(UnknownModel):
            remove_model(session, "llama-70b")
