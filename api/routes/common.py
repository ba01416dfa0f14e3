"""Small pieces the route modules share: the zoo's names, submitting stored requests."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.calls import CallError
from api.errors import ApiError
from db.models import ZooModel

__all__ = ["call_error", "publish", "zoo_names"]

log = logging.getLogger(__name__)


def zoo_names(session: Session) -> set[str]:
    return set(session.scalars(select(ZooModel.name)))


def call_error(exc: CallError) -> ApiError:
    return ApiError(exc.status, str(exc), param=exc.param, code=exc.code)


def publish(job_id: str, request_ids: Sequence[int], chunk_size: int) -> None:
    """Queue a stored job's requests for routing, as `messplus submit` does.

    The job is committed already. If the broker cannot take them now, the requests wait
    in Postgres and the reconciler publishes them again (MESSPLUS_STUCK_AFTER_S): a lost
    publish is a lost message, which the pipeline already survives."""
    from kombu.exceptions import OperationalError

    from workers.publish import publish_route

    try:
        publish_route(request_ids, chunk_size)
    except OperationalError as exc:
        log.warning("job %s stored but not queued (%s); the reconciler will", job_id, exc)
