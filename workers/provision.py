"""Setting up a deployment's rows: the zoo's models and the tenants with their SLAs.

Shared by the command line, the demo and the tests, so a tenant always starts with the
router's placeholder backlog in its virtual queue and a zoo is always priced the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from db.models import Tenant, ZooModel
from db.sla import lock_sla_state
from db.tenants import create_tenant
from db.zoo import ModelSpec, upsert_models
from router.dataset import ZooData
from router.messplus import MessPlusSettings

__all__ = ["add_tenant", "register_zoo"]


def register_zoo(session: Session, data: ZooData) -> list[ZooModel]:
    """Register a labelled zoo's models, priced at each model's mean cost in the data."""
    mean_cost = data.mean_cost()
    return upsert_models(
        session,
        [
            ModelSpec(
                name=name,
                triton_model_name=name,
                position=position,
                cost_per_request=float(mean_cost[position]),
                cost_per_token=0.0,
                cost_unit=data.cost_unit,
            )
            for position, name in enumerate(data.models)
        ],
    )


def add_tenant(
    session: Session, name: str, alpha: float, settings: Mapping[str, Any] | None = None
) -> Tenant:
    """Create a tenant whose virtual queue starts at the router's placeholder backlog.

    Raises ValueError for router settings MessPlusSettings does not accept.
    """
    router_settings = MessPlusSettings(**dict(settings or {}))
    tenant = create_tenant(session, name, alpha, dict(settings or {}))
    lock_sla_state(session, tenant.id).virtual_queue = router_settings.initial_queue()
    session.flush()
    return tenant
