"""POST /v1/feedback: our extension, a user's rating of an answer.

Rate an answer by the batch and the line's custom_id, or by the answer's id
(`chatcmpl-...`, `cmpl-...`), with `"satisfied": true|false`; once, or again to change it.
One rating per call, or up to MAX_RATINGS as {"ratings": [...]}, all or nothing. The
ratings then take the path `messplus feedback` takes: the same checks of what they name
(the tenant's own requests only) and the same messages to the feedback workers, who store
them and move the tenant's SLA.
"""

from __future__ import annotations

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
from workers.cli._input import BadLine

__all__ = ["MAX_RATINGS", "router"]

router = APIRouter(tags=["feedback"])

MAX_RATINGS = 10_000


class Rating(BaseModel):
    """One rating: `response_id`, or `batch_id` with `custom_id`; and `satisfied`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    satisfied: bool
    response_id: str | None = Field(None, max_length=64)
    batch_id: str | None = Field(None, max_length=64)
    custom_id: str | None = Field(None, max_length=512)

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


def _send(found: Deployment, owner: KeyOwner, ratings: list[Rating], single: bool) -> int:
    from workers.cli.feedback import _unknown_references
    from workers.messages import RatingMessage
    from workers.publish import publish_feedback

    references = [_reference(r) for r in ratings]
    by_seq = [(job, name) for job, name in filter(None, references) if isinstance(name, int)]
    by_custom_id = [(job, name) for job, name in filter(None, references) if isinstance(name, str)]
    with found.sessions.begin() as session:
        ids = find_requests(session, owner.tenant_id, by_seq=by_seq, by_custom_id=by_custom_id)
        bad = [
            BadLine(index, f"no such {_name(rating)}")
            for index, (rating, reference) in enumerate(zip(ratings, references, strict=True))
            if reference is None or reference not in ids
        ]
        messages = [
            (index, RatingMessage(ids[reference], rating.satisfied))
            for index, (rating, reference) in enumerate(zip(ratings, references, strict=True))
            if reference is not None and reference in ids
        ]
        if not bad:
            bad = _unknown_references(session, messages, owner.tenant_id)
    if bad:
        if single:
            raise not_found("answer", _reference_text(ratings[0]))
        listed = "; ".join(f"ratings[{b.line}]: {b.reason}" for b in bad[:3])
        raise ApiError(
            400,
            f"{len(bad)} of {len(ratings)} ratings name nothing of yours, none sent: {listed}",
            param="ratings",
            code="unknown_reference",
            extra={"errors": [{"index": b.line, "message": b.reason} for b in bad[:1000]]},
        )
    return publish_feedback(
        [message for _, message in messages], found.settings.chunk_size, tenant=owner.tenant
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
        {"object": "feedback", **rating.model_dump(exclude_none=True), "status": "queued"}
        for rating in ratings
    ]
    return data[0] if single else {"object": "list", "data": data}
