"""/v1/batches: a checked file becomes a job, routed in chunks; polled, listed, cancelled.

Creating a batch stores the job, its requests and the batch row in one transaction, then
publishes the requests to the route queue in chunks (db.jobs.create_job and
workers.publish.publish_route, as `messplus submit` does). Validation happens before the
batch exists, so a batch is never `validating`; `finalizing` is skipped too, the output
being read from the stored requests whenever it is asked for. `completion_window` is
accepted as OpenAI's `24h`; messplus does not expire batches.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from api.calls import ENDPOINTS, shape_error
from api.deps import JsonBody, Tenant, deployment
from api.errors import ApiError, bad_request, not_found
from api.objects import BATCH_ID, batch_object, page
from api.routes.common import call_error, publish
from api.routes.files import check_batch_lines
from db.api_files import file_parts, get_file
from db.api_keys import KeyOwner
from db.batches import cancel_batch, create_batch, get_batch, list_batches
from db.errors import UnknownBatch, UnknownFile

__all__ = ["router"]

router = APIRouter(tags=["batches"])

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]


class BatchCreate(BaseModel):
    """POST /v1/batches."""

    model_config = ConfigDict(extra="forbid", strict=True)

    input_file_id: str = Field(max_length=64)
    endpoint: str = Field(description=" or ".join(ENDPOINTS))
    completion_window: str = Field(description="24h")
    metadata: Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)] | None = None


def _job_id(batch_id: str) -> str:
    match = BATCH_ID.fullmatch(batch_id)
    if match is None:
        raise not_found("batch", batch_id)
    return match.group(1)


def _parse(body: dict[str, Any]) -> BatchCreate:
    try:
        create = BatchCreate.model_validate(body)
    except ValidationError as exc:
        raise call_error(shape_error(exc)) from None
    if create.endpoint not in ENDPOINTS:
        raise bad_request(
            f"unsupported endpoint {create.endpoint!r}; use {' or '.join(ENDPOINTS)}",
            param="endpoint",
            code="invalid_endpoint",
        )
    if create.completion_window != "24h":
        raise bad_request(
            f"completion_window must be '24h', got {create.completion_window!r}",
            param="completion_window",
        )
    return create


@router.post(
    "/v1/batches",
    summary="Create a batch from an uploaded file",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BatchCreate.model_json_schema()}},
        }
    },
)
async def create(
    request: Request,
    owner: Tenant,
    body: JsonBody,
) -> dict[str, Any]:
    found = deployment(request)
    spec = _parse(body)

    def store() -> tuple[str, list[int]]:
        with found.sessions.begin() as session:
            try:
                file = get_file(session, spec.input_file_id, owner.tenant_id)
            except UnknownFile:
                raise not_found("file", spec.input_file_id) from None
            if file.purpose != "batch":
                raise bad_request("the file's purpose is not 'batch'", param="input_file_id")
            filename = file.filename
            checked = check_batch_lines(
                found, file_parts(session, spec.input_file_id), f"file {spec.input_file_id}"
            )
            if checked.endpoint != spec.endpoint:
                raise bad_request(
                    f"the file's lines call {checked.endpoint}, not {spec.endpoint}",
                    param="endpoint",
                    code="endpoint_mismatch",
                )
            return create_batch(
                session,
                owner.tenant_id,
                input_file_id=spec.input_file_id,
                endpoint=spec.endpoint,
                completion_window=spec.completion_window,
                metadata=spec.metadata,
                requests=checked.requests,
                source=filename[:200],
            )

    job_id, request_ids = await run_in_threadpool(store)
    await run_in_threadpool(publish, job_id, request_ids, found.settings.chunk_size)
    return await run_in_threadpool(_view, request, job_id, owner)


def _view(request: Request, job_id: str, owner: KeyOwner) -> dict[str, Any]:
    with deployment(request).sessions.begin() as session:
        try:
            return batch_object(get_batch(session, job_id, owner.tenant_id))
        except UnknownBatch:
            raise not_found("batch", f"batch_{job_id}") from None


@router.get("/v1/batches/{batch_id}", summary="A batch: status, request counts, output files")
def retrieve(batch_id: str, request: Request, owner: Tenant) -> dict[str, Any]:
    return _view(request, _job_id(batch_id), owner)


@router.get("/v1/batches", summary="The tenant's batches, newest first")
def list_all(
    request: Request,
    owner: Tenant,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    cursor = None if after is None else _job_id(after)
    with deployment(request).sessions.begin() as session:
        try:
            views, has_more = list_batches(session, owner.tenant_id, limit=limit, after=cursor)
        except UnknownBatch:
            raise not_found("batch", after or "") from None
        return page([batch_object(v) for v in views], has_more)


@router.post(
    "/v1/batches/{batch_id}/cancel",
    summary="Cancel a batch: queued requests are not served, routed ones finish",
)
def cancel(batch_id: str, request: Request, owner: Tenant) -> dict[str, Any]:
    job_id = _job_id(batch_id)
    with deployment(request).sessions.begin() as session:
        try:
            view = cancel_batch(session, job_id, owner.tenant_id)
            if view is None:
                status = batch_object(get_batch(session, job_id, owner.tenant_id))["status"]
                raise ApiError(
                    409,
                    f"batch {batch_id} is {status}: only a batch in progress can be cancelled",
                    code="batch_not_cancellable",
                )
        except UnknownBatch:
            raise not_found("batch", batch_id) from None
        return batch_object(view)
