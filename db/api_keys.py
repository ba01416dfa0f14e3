"""Tenants' API keys: made here, shown once, stored only as a hash, revoked at once.

The secret is `msp-` and 32 random bytes (URL-safe base64). Only its SHA-256 is stored:
the database (or a backup of it) never holds a usable key, and a secret of 256 random bits
needs no slow password hash. Every HTTP request looks its key up here, so a revocation
takes effect on the very next request, in every API process.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import UnknownApiKey
from db.models import ApiKey, Tenant, utcnow
from db.tenants import get_tenant

__all__ = [
    "KEY_PREFIX",
    "KeyOwner",
    "create_key",
    "hash_key",
    "key_owner",
    "list_keys",
    "revoke_key",
]

KEY_PREFIX = "msp-"
_SHOWN_CHARS = 12  # "msp-" and 8 characters of the secret: enough to tell keys apart


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """Whom an HTTP request acts for."""

    key_id: int
    tenant_id: int
    tenant: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(session: Session, tenant_id: int) -> tuple[ApiKey, str]:
    """A new key for the tenant; the secret is returned here and never again."""
    get_tenant(session, tenant_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(tenant_id=tenant_id, prefix=secret[:_SHOWN_CHARS], key_hash=hash_key(secret))
    session.add(key)
    session.flush()
    return key, secret


def list_keys(session: Session, tenant_id: int) -> list[ApiKey]:
    """The tenant's keys, revoked ones included, oldest first."""
    return list(
        session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.id))
    )


def revoke_key(session: Session, tenant_id: int, key_id: int) -> ApiKey:
    """Revoke one of the tenant's keys (again is harmless); another tenant's key is unknown."""
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id))
    if key is None:
        raise UnknownApiKey(key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    return key


def key_owner(session: Session, secret: str) -> KeyOwner | None:
    """The tenant a secret acts for, or None for a key that is unknown or revoked."""
    row = session.execute(
        select(ApiKey.id, Tenant.id, Tenant.name)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None))
    ).first()
    return None if row is None else KeyOwner(*row)
