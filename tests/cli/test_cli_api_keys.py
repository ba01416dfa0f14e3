"""`messplus tenants keys create|list|revoke NAME` against a real database."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.api_keys import hash_key, key_owner
from db.models import ApiKey
from tests.cli.conftest import Run, one_error_line


def test_a_key_is_printed_once_stored_as_a_hash_and_revoked_at_once(
    run: Callable[..., Run], sessions: sessionmaker[Session]
) -> None:
    assert run("tenants", "add", "acme", "--alpha", "0.8").code == 0
    created = run("tenants", "keys", "create", "acme")
    assert created.code == 0, created
    secret = created.out.strip()
    assert secret.startswith("msp-") and len(secret) > 40 and "\n" not in secret
    assert "shown once" in created.err
    with sessions.begin() as session:
        (stored,) = session.scalars(select(ApiKey)).all()
        assert stored.key_hash == hash_key(secret) and secret not in stored.key_hash
        assert secret.startswith(stored.prefix) and len(stored.prefix) < len(secret) // 3
        owner = key_owner(session, secret)
        assert owner is not None and owner.tenant == "acme"

    listed = run("tenants", "keys", "list", "acme")
    assert listed.code == 0 and f"{stored.prefix}..." in listed.out and secret not in listed.out

    assert run("tenants", "keys", "revoke", "acme", str(stored.id)).code == 0
    with sessions.begin() as session:
        assert key_owner(session, secret) is None
    assert run("tenants", "keys", "revoke", "acme", str(stored.id)).code == 0  # harmless again


def test_another_tenants_key_and_unknown_names_are_refused(run: Callable[..., Run]) -> None:
    assert run("tenants", "add", "acme", "--alpha", "0.8").code == 0
    assert run("tenants", "add", "other", "--alpha", "0.8").code == 0
    assert run("tenants", "keys", "create", "acme").code == 0
    assert "unknown API key 1" in one_error_line(run("tenants", "keys", "revoke", "other", "1"))
    assert "unknown tenant 'nobody'" in one_error_line(run("tenants", "keys", "create", "nobody"))
    assert "no keys" in run("tenants", "keys", "list", "other").out
