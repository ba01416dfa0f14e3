"""`messplus tenants add|list|set` against a real database."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import SlaState, Tenant
from router.messplus import MessPlusSettings
from tests.cli.conftest import Run, one_error_line


def _tenant(sessions: sessionmaker[Session], name: str) -> tuple[Tenant, SlaState]:
    with sessions.begin() as session:
        row = session.execute(
            select(Tenant, SlaState)
            .join(SlaState, SlaState.tenant_id == Tenant.id)
            .where(Tenant.name == name)
        ).one()
        return row[0], row[1]


def test_add_stores_settings_and_the_placeholder_backlog(
    run: Callable[..., Run], sessions: sessionmaker[Session]
) -> None:
    result = run("tenants", "add", "acme", "--alpha", "0.8", "--V", "10", "--c", "0.1")
    assert result.code == 0, result
    initial = MessPlusSettings(v=10.0, c=0.1).initial_queue()
    assert "acme" in result.out and f"virtual queue {initial:g}" in result.out
    tenant, state = _tenant(sessions, "acme")
    assert (tenant.alpha, tenant.settings) == (0.8, {"v": 10.0, "c": 0.1})
    expected = MessPlusSettings(v=10.0, c=0.1).initial_queue()
    assert state.virtual_queue == pytest.approx(expected)

    assert run("tenants", "add", "plain", "--alpha", "0.5").code == 0
    tenant, state = _tenant(sessions, "plain")
    assert tenant.settings == {}
    assert state.virtual_queue == pytest.approx(MessPlusSettings().initial_queue())


def test_list_shows_every_tenant_with_its_sla_state(
    run: Callable[..., Run], sessions: sessionmaker[Session]
) -> None:
    assert "no tenants" in run("tenants", "list").out
    run("tenants", "add", "zeta", "--alpha", "0.6", "--headroom", "1")
    run("tenants", "add", "acme", "--alpha", "0.8")
    with sessions.begin() as session:
        state = session.scalar(
            select(SlaState)
            .join(Tenant, Tenant.id == SlaState.tenant_id)
            .where(Tenant.name == "acme")
        )
        assert state is not None
        state.request_counter, state.rated_count, state.satisfied_count = 10, 4, 3
    result = run("tenants", "list")
    assert result.code == 0
    header, acme, zeta = result.out.splitlines()
    assert header.split() == [
        "name",
        "alpha",
        "settings",
        "virtual",
        "queue",
        "requests",
        "rated",
        "satisfied",
    ]
    acme_queue = f"{MessPlusSettings().initial_queue():g}"
    zeta_queue = f"{MessPlusSettings(headroom=1.0).initial_queue():g}"
    assert acme.split() == ["acme", "0.8", "{}", acme_queue, "10", "4", "0.7500"]
    assert zeta.split() == ["zeta", "0.6", '{"headroom":', "1.0}", zeta_queue, "0", "0", "-"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "0"], "alpha"),
        (["--alpha", "1"], "alpha"),
        (["--alpha", "1.5"], "alpha"),
        (["--alpha", "0.5", "--V", "0"], "V must be > 0"),
        (["--alpha", "0.5", "--c", "2"], "c must be in [0, 1]"),
        (["--alpha", "0.5", "--headroom", "-1"], "headroom must be >= 0"),
        (["--alpha", "0.5", "--sla-confidence", "-1"], "sla_confidence must be >= 0"),
    ],
)
def test_add_refuses_bad_values_in_one_line(
    run: Callable[..., Run], sessions: sessionmaker[Session], args: list[str], message: str
) -> None:
    line = one_error_line(run("tenants", "add", "acme", *args))
    assert message in line
    with sessions.begin() as session:
        assert session.scalars(select(Tenant)).all() == []


def test_add_refuses_non_finite_numbers_and_bad_names(run: Callable[..., Run]) -> None:
    for value in ("nan", "inf"):
        result = run("tenants", "add", "acme", "--alpha", "0.5", "--headroom", value)
        assert result.code == 2 and "must be finite" in result.err
    assert "tenant name" in one_error_line(run("tenants", "add", " acme", "--alpha", "0.5"))
    assert "tenant name" in one_error_line(run("tenants", "add", "", "--alpha", "0.5"))


@pytest.mark.parametrize(
    "name",
    ["acme\x1b[31mred", "acme\nzeta", "acme\u202eeliot", "ac me", ".acme", "acmé", "a" * 201],
    ids=["escape sequence", "newline", "direction override", "space", "dot first",
         "non-ASCII", "too long"],
)  # fmt: skip
def test_add_allows_only_names_that_print_as_themselves(
    run: Callable[..., Run], sessions: sessionmaker[Session], name: str
) -> None:
    """Issue 12.8: a name printed raw by `tenants list` and `sla` must not be able to
    inject terminal escapes or break their tables."""
    line = one_error_line(run("tenants", "add", name, "--alpha", "0.5"))
    assert "tenant name" in line and "\x1b" not in line and "\u202e" not in line
    with sessions.begin() as session:
        assert session.scalars(select(Tenant)).all() == []
    assert run("tenants", "add", "Team_eu-1.prod", "--alpha", "0.5").code == 0


def test_a_name_stored_before_the_safe_set_is_printed_escaped(
    run: Callable[..., Run], sessions: sessionmaker[Session]
) -> None:
    """Issue 12.8, rows older than the check: `tenants list` and `sla` print such a name
    escaped, so it cannot drive the terminal or break the table."""
    assert run("tenants", "add", "acme", "--alpha", "0.5").code == 0
    with sessions.begin() as session:
        session.scalars(select(Tenant)).one().name = "acme\x1b[2J\u202eeliot"
    for command in (("tenants", "list"), ("sla",)):
        out = run(*command).out
        assert "\x1b" not in out and "\u202e" not in out
        assert r"'acme\x1b[2J\u202eeliot'" in out


def test_add_refuses_a_duplicate_name(run: Callable[..., Run]) -> None:
    assert run("tenants", "add", "acme", "--alpha", "0.8").code == 0
    assert "already exists" in one_error_line(run("tenants", "add", "acme", "--alpha", "0.7"))


def test_alpha_changes_at_run_time_and_the_queue_keeps_its_value(
    run: Callable[..., Run], sessions: sessionmaker[Session]
) -> None:
    run("tenants", "add", "acme", "--alpha", "0.8")
    _, before = _tenant(sessions, "acme")
    result = run("tenants", "set", "acme", "--alpha", "0.65")
    assert result.code == 0 and "0.8 -> 0.65" in result.out
    tenant, after = _tenant(sessions, "acme")
    assert tenant.alpha == 0.65
    assert after.virtual_queue == before.virtual_queue
    assert "acme  0.65" in run("tenants", "list").out

    assert "alpha" in one_error_line(run("tenants", "set", "acme", "--alpha", "1"))
    assert _tenant(sessions, "acme")[0].alpha == 0.65
    assert "unknown tenant 'nobody'" in one_error_line(
        run("tenants", "set", "nobody", "--alpha", "0.5")
    )
