"""/v1/models: the routed name, `messplus`, and the zoo's models that answer under it.

Zoo models are listed so clients can read which model answered (`model` in every
answer); requests name `messplus` (api.calls says why a zoo model is refused).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.calls import ROUTED_MODEL
from api.deps import Tenant, deployment
from api.errors import not_found
from db.zoo import list_models

__all__ = ["router"]

router = APIRouter(tags=["models"])


def _models(request: Request) -> list[dict[str, Any]]:
    with deployment(request).sessions.begin() as session:
        zoo = [m.name for m in list_models(session) if m.enabled]
    routed = {"id": ROUTED_MODEL, "object": "model", "created": 0, "owned_by": "messplus"}
    return [routed] + [
        {"id": name, "object": "model", "created": 0, "owned_by": "messplus-zoo"} for name in zoo
    ]


@router.get("/v1/models", summary="The routed model and the zoo's models")
def list_all(request: Request, owner: Tenant) -> dict[str, Any]:
    return {"object": "list", "data": _models(request)}


@router.get("/v1/models/{model}", summary="One model")
def retrieve(model: str, request: Request, owner: Tenant) -> dict[str, Any]:
    found = next((m for m in _models(request) if m["id"] == model), None)
    if found is None:
        raise not_found("model", model)
    return found
