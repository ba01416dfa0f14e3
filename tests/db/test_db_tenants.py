"""Tenants and the SLA row created with each."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DbError, InvalidValue, TenantExists, UnknownTenant
from db.models import SlaState
from db.tenants import create_tenant, get_tenant, get_tenant_by_name, list_tenants, set_alpha


def test_create_and_read_back(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        created = create_tenant(session, "acme", 0.8, {"V": 0.001, "c": 0.1})
    with sessions.begin() as session:
        tenant = get_tenant_by_name(session, "acme")
        assert (tenant.id, tenant.alpha, tenant.settings) == (
            created.id,
            0.8,
            {"V": 0.001, "c": 0.1},
        )
        assert tenant.created_at.tzinfo is dt.UTC
        assert abs(dt.datetime.now(dt.UTC) - tenant.created_at) < dt.timedelta(minutes=1)
        state = session.get(SlaState, tenant.id)
        assert state is not None
        assert (state.virtual_queue, state.tracked_queue, state.request_counter) == (0, 0, 0)
        assert (state.rated_count, state.satisfied_count) == (0, 0)


def test_list_tenants_by_name(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        create_tenant(session, "zeta", 0.5)
        create_tenant(session, "alpha-corp", 0.9)
        assert [t.name for t in list_tenants(session)] == ["alpha-corp", "zeta"]


def test_duplicate_name_is_refused(sessions: sessionmaker[Session], tenant_id: int) -> None:
    with sessions.begin() as session, pytest.raises(TenantExists, match="acme"):
        create_tenant(session, "acme", 0.5)


def test_unknown_tenant(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        with pytest.raises(UnknownTenant, match="'nobody'"):
            get_tenant_by_name(session, "nobody")
        with pytest.raises(UnknownTenant):
            get_tenant(session, 999)
        with pytest.raises(UnknownTenant):
            set_alpha(session, 999, 0.5)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, math.nan, math.inf])
def test_alpha_must_lie_inside_the_unit_interval(
    sessions: sessionmaker[Session], tenant_id: int, alpha: float
) -> None:
    with sessions.begin() as session:
        with pytest.raises(InvalidValue):
            create_tenant(session, "bad", alpha)
        with pytest.raises(InvalidValue):
            set_alpha(session, tenant_id, alpha)


def test_set_alpha(sessions: sessionmaker[Session], tenant_id: int) -> None:
    with sessions.begin() as session:
        assert set_alpha(session, tenant_id, 0.65).alpha == 0.65
    with sessions.begin() as session:
        assert get_tenant(session, tenant_id).alpha == 0.65


def test_every_error_is_a_db_error() -> None:
    assert issubclass(UnknownTenant, DbError) and issubclass(UnknownTenant, LookupError)
    assert issubclass(InvalidValue, DbError) and issubclass(InvalidValue, ValueError)
    assert issubclass(TenantExists, DbError)
