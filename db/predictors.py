"""Predictor versions: the trainer publishes, routers load the active one, humans roll back.

Blobs are JSON bytes (the router's own serialisation), never pickle: loading a pickle from
a database runs whatever code was written into it. `publish_version` refuses anything that
is not JSON. At most one version is active, enforced by a partial unique index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, undefer

from db.errors import InvalidValue, UnknownPredictorVersion
from db.models import PredictorVersion

__all__ = [
    "activate",
    "active_version",
    "active_version_id",
    "list_versions",
    "publish_version",
]


def publish_version(
    session: Session,
    blob: bytes,
    metrics: Mapping[str, Any],
    note: str = "",
    *,
    activate: bool = False,
) -> PredictorVersion:
    """Store a trained predictor; with `activate`, routers switch to it on their next check."""
    try:
        json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidValue(f"predictor blob must be JSON bytes: {exc}") from exc
    version = PredictorVersion(blob=blob, metrics=dict(metrics), note=note)
    session.add(version)
    session.flush()
    if activate:
        _activate(session, version)
    return version


def active_version(session: Session) -> PredictorVersion | None:
    """The active version with its blob loaded, or None before the first training."""
    return session.scalar(
        select(PredictorVersion)
        .where(PredictorVersion.active)
        .options(undefer(PredictorVersion.blob))
        .execution_options(populate_existing=True)
    )


def active_version_id(session: Session) -> int | None:
    """Just the active version's id: routers poll this and reload only when it changes."""
    return session.scalar(select(PredictorVersion.id).where(PredictorVersion.active))


def list_versions(session: Session) -> list[PredictorVersion]:
    """Every version, newest first, without blobs (they stay deferred)."""
    return list(session.scalars(select(PredictorVersion).order_by(PredictorVersion.id.desc())))


def activate(session: Session, version_id: int) -> PredictorVersion:
    """Make `version_id` the active version, e.g. to roll back a bad training run."""
    version = session.get(PredictorVersion, version_id)
    if version is None:
        raise UnknownPredictorVersion(version_id)
    _activate(session, version)
    return version


def _activate(session: Session, version: PredictorVersion) -> None:
    # Deactivate the others first: the partial unique index is checked per statement.
    session.execute(
        update(PredictorVersion)
        .where(PredictorVersion.active, PredictorVersion.id != version.id)
        .values(active=False)
    )
    version.active = True
    session.flush()
