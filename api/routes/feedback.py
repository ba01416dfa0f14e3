"""POST /v1/feedback: our extension, a user's rating of an answer.

Rate an answer by the batch and the line's custom_id, or by the answer's id
(`chatcmpl-...`, `cmpl-...`), with `"satisfied": true|false`, optionally `"rated_at"` (when
the user rated; default: now) and `"model"` (an explored answer of that zoo model; default:
the answer served); once, or again to change it. One rating per call, or up to MAX_RATINGS
as {"ratings": [...]}, all or nothing. The ids are resolved to the tenant's requests (any
other id reads as unknown), and the ratings then go in exactly as `messplus feedback`'s do:
workers.ratings.parse_rating and submit_ratings check that each names an answer that
exists, store them in their order and send them to the feedback workers.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from api.calls import shape_error
from api.deps import Deployment, JsonBody, Tenant, deployment
from api.errors import ApiError, not_found
from api.objects import BATCH_ID, RESPONSE_ID
from api.routes.common import call_error
from db.api_keys import KeyOwner
from db.jobs import find_requests

__all__ = ["MAX_RATINGS", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["feedback"])

MAX_RATINGS = 10_000


class Rating(BaseModel):
    """One rating: `response_id`, or `batch_id` with `custom_id`; and `satisfied`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    satisfied: bool
    response_id: str | None = Field(None, max_length=64)
    batch_id: str | None = Field(None, max_length=64)
    custom_id: str | None = Field(None, max_length=512)
    rated_at: str | None = Field(None, max_length=64, description="ISO 8601 with offset")
    model: str | None = Field(None, max_length=200, description="default: the answer served")

    @model_validator(mode="after")
    def _one_reference(self) -> Rating:
        by_id = self.response_id is not None
        by_line = self.batch_id is not None and self.custom_id is not None
        partial = (self.batch_id is None) != (self.custom_id is None)
        if by_id == by_line or partial:
            raise ValueError("give response_id, or batch_id with custom_id")
        return self


class Ratings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    ratings: Annotated[list[Rating], Field(min_length=1, max_length=MAX_RATINGS)]


def _parse(body: dict[str, Any]) -> tuple[list[Rating], bool]:
    """The ratings, and whether the body was a single one."""
    single = "ratings" not in body
    try:
        if single:
            return [Rating.model_validate(body)], True
        return list(Ratings.model_validate(body).ratings), False
    except ValidationError as exc:
        raise call_error(shape_error(exc)) from None


def _reference(rating: Rating) -> tuple[str, int | str] | None:
    """(job, seq) or (job, custom_id) the rating names; None if no id of ours looks so."""
    if rating.response_id is not None:
        match = RESPONSE_ID.fullmatch(rating.response_id)
        return None if match is None else (match.group(2), int(match.group(3)))
    match = BATCH_ID.fullmatch(rating.batch_id or "")
    return None if match is None else (match.group(1), rating.custom_id or "")


def _name(rating: Rating) -> str:
    if rating.response_id is not None:
        return f"response {rating.response_id!r}"
    return f"custom_id {rating.custom_id!r} of batch {rating.batch_id!r}"


def _send(found: Deployment, owner: KeyOwner, ratings: list[Rating], single: bool) -> None:
    from kombu.exceptions import OperationalError

    from db.models import utcnow
    from workers.ratings import RatingsRefused, parse_rating, submit_ratings

    now = utcnow()
    references = [_reference(r) for r in ratings]
    by_seq = [(job, name) for job, name in filter(None, references) if isinstance(name, int)]
    by_custom_id = [(job, name) for job, name in filter(None, references) if isinstance(name, str)]
    with found.sessions.begin() as session:
        ids = find_requests(session, owner.tenant_id, by_seq=by_seq, by_custom_id=by_custom_id)
    bad: list[tuple[int, str]] = []
    submitted = []
    for position, (rating, reference) in enumerate(zip(ratings, references, strict=True)):
        if reference is None or reference not in ids:
            bad.append((position, f"no such {_name(rating)}"))
            continue
        fields: dict[str, object] = {"request_id": ids[reference], "satisfied": rating.satisfied}
        fields |= {k: v for k, v in (("model", rating.model), ("rated_at", rating.rated_at)) if v}
        try:
            submitted.append(parse_rating(fields, now))
        except ValueError as exc:
            bad.append((position, str(exc)))
    if not bad:
        try:
            submit_ratings(found.sessions, owner.tenant_id, submitted, found.settings.chunk_size)
        except RatingsRefused as refused:
            # Its reasons name the internal request id; the tenant named the answer.
            bad = [
                (p, why.replace(f"request {submitted[p].request_id}", _name(ratings[p])))
                for p, why in refused.bad
            ]
        except OperationalError as exc:  # stored: the reconciler sends them
            log.warning("ratings stored, not yet sent (%s); the reconciler will", exc)
    if not bad:
        return
    if single:
        position, why = bad[0]
        if why.startswith("no such"):
            raise not_found("answer", _reference_text(ratings[0]))
        raise ApiError(409, why, code="not_rateable")
    listed = "; ".join(f"ratings[{p}]: {why}" for p, why in bad[:3])
    raise ApiError(
        400,
        f"{len(bad)} of {len(ratings)} ratings refused, none stored: {listed}",
        param="ratings",
        code="invalid_ratings",
        extra={"errors": [{"index": p, "message": why} for p, why in bad[:1000]]},
    )


def _reference_text(rating: Rating) -> str:
    return rating.response_id or f"{rating.batch_id}/{rating.custom_id}"


@router.post(
    "/v1/feedback",
    summary="Rate answers (our extension): satisfied true or false, by id or custom_id",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"anyOf": [Rating.model_json_schema(), Ratings.model_json_schema()]}
                }
            },
        }
    },
)
async def rate(request: Request, owner: Tenant, body: JsonBody) -> dict[str, Any]:
    ratings, single = _parse(body)
    await run_in_threadpool(_send, deployment(request), owner, ratings, single)
    data = [
        {"object": "feedback", **rating.model_dump(exclude_none=True), "status": "accepted"}
        for rating in ratings
    ]
    return data[0] if single else {"object": "list", "data": data}
