"""Tenants: who is served, with which SLA target alpha and router settings.

A tenant's name is printed in tables (`messplus tenants list`, `messplus sla`), logs, metric
labels and reports, so it is restricted to a set that prints as itself everywhere: ASCII
letters and digits, '.', '_' and '-', starting with a letter or digit, at most 200
characters. Control characters (terminal escape sequences, newlines), spaces and Unicode
direction overrides never get in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import InvalidValue, TenantExists, UnknownTenant
from db.models import SlaState, Tenant

__all__ = [
    "TENANT_NAME",
    "create_tenant",
    "get_tenant",
    "get_tenant_by_name",
    "list_tenants",
    "set_alpha",
]

TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def create_tenant(
    session: Session, name: str, alpha: float, settings: Mapping[str, Any] | None = None
) -> Tenant:
    """Create a tenant together with its zeroed SLA state, so routers never find it missing."""
    if not TENANT_NAME.fullmatch(name):
        raise InvalidValue(
            "a tenant name is 1 to 200 ASCII letters, digits, '.', '_' or '-', starting with "
            f"a letter or digit; got {name!a}"
        )
    _check_alpha(alpha)
    if session.scalar(select(Tenant.id).where(Tenant.name == name)) is not None:
        raise TenantExists(name)
    tenant = Tenant(name=name, alpha=alpha, settings=dict(settings or {}))
    session.add(tenant)
    session.flush()
    session.add(SlaState(tenant_id=tenant.id))
    session.flush()
    return tenant


def get_tenant(session: Session, tenant_id: int) -> Tenant:
    """The tenant a request row points at; workers receive ids, not names."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise UnknownTenant(tenant_id)
    return tenant


def get_tenant_by_name(session: Session, name: str) -> Tenant:
    """The tenant a client names on the command line or in a submitted job."""
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        raise UnknownTenant(name)
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.name)))


def set_alpha(session: Session, tenant_id: int, alpha: float) -> Tenant:
    """Change a tenant's SLA target; its virtual queues keep their values."""
    _check_alpha(alpha)
    tenant = get_tenant(session, tenant_id)
    tenant.alpha = alpha
    session.flush()
    return tenant


def _check_alpha(alpha: float) -> None:
    # alpha = 0 or 1 makes the SLA trivial or unreachable; the CHECK constraint agrees.
    if not (math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise InvalidValue(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
