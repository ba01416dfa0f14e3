"""POST /v1/chat/completions and /v1/completions: one request through the same pipeline.

The call becomes a job of one request, stored and published as a batch's are; the route
then waits (api.waiter) until the request is done or failed, up to MESSPLUS_API_WAIT_S.
After that it answers 504 with the response id: the request goes on, its answer is stored,
and GET /v1/chat/completions/{id} (or /v1/completions/{id}) returns it once it is there.
Non-streaming only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.calls import CHAT, COMPLETIONS, CallError, ChatCompletionBody, CompletionBody, to_request
from api.deps import Deployment, JsonBody, Tenant, deployment
from api.errors import ApiError, not_found
from api.objects import RESPONSE_ID, answer_body, failure, response_id
from api.routes.common import call_error, publish, zoo_names
from db.api_keys import KeyOwner
from db.errors import UnknownJob
from db.jobs import JobResult, create_job, job_progress, job_results
from db.models import RequestStatus

__all__ = ["router"]

router = APIRouter(tags=["completions"])


def _submit(found: Deployment, owner: KeyOwner, body: dict[str, Any], endpoint: str) -> str:
    """Check the call, store it as a job of one request and publish it; the job id."""
    with found.sessions.begin() as session:
        try:
            request = to_request(
                body,
                endpoint,
                zoo=zoo_names(session),
                max_prompt_bytes=found.settings.max_prompt_bytes,
                max_tokens=found.settings.max_tokens,
            )
        except CallError as exc:
            raise call_error(exc) from None
        job_id, request_ids = create_job(session, owner.tenant_id, [request], endpoint)
    publish(job_id, request_ids, found.settings.chunk_size)
    return job_id


def _result(found: Deployment, job_id: str, owner: KeyOwner) -> JobResult:
    with found.sessions.begin() as session:
        (result,) = job_results(session, job_id, owner.tenant_id)
    return result


def _answer(endpoint: str, job_id: str, result: JobResult) -> dict[str, Any]:
    """The answer's body, or the request's failure as an error (the id in `id`)."""
    if result.status is RequestStatus.DONE:
        return answer_body(endpoint, job_id, result)
    why = failure(result.failure_reason)
    raise ApiError(
        why.status,
        why.message,
        code=why.code,
        extra={"id": response_id(endpoint, job_id, result.seq)},
    )


async def _complete(request: Request, owner: KeyOwner, body: dict[str, Any], endpoint: str) -> Any:
    found = deployment(request)
    job_id = await run_in_threadpool(_submit, found, owner, body, endpoint)

    async def finished() -> bool:
        def read() -> bool:
            with found.sessions.begin() as session:
                return job_progress(session, job_id, owner.tenant_id).finished

        return await run_in_threadpool(read)

    wait_s = found.settings.api_wait_s
    if not await found.waiter.wait(job_id, finished, wait_s):
        answer_id = response_id(endpoint, job_id, 0)
        raise ApiError(
            504,
            f"not answered within {wait_s:g} s; the request goes on and its answer is kept: "
            f"GET {endpoint}/{answer_id} returns it once it is there",
            code="timeout",
            extra={"id": answer_id},
        )
    result = await run_in_threadpool(_result, found, job_id, owner)
    return _answer(endpoint, job_id, result)


def _body_schema(model: type[Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


@router.post(
    "/v1/chat/completions",
    summary="A chat completion from the zoo model the router picks (model: messplus)",
    openapi_extra=_body_schema(ChatCompletionBody),
)
async def chat_completions(
    request: Request,
    owner: Tenant,
    body: JsonBody,
) -> Any:
    return await _complete(request, owner, body, CHAT)


@router.post(
    "/v1/completions",
    summary="A text completion from the zoo model the router picks (model: messplus)",
    openapi_extra=_body_schema(CompletionBody),
)
async def completions(
    request: Request,
    owner: Tenant,
    body: JsonBody,
) -> Any:
    return await _complete(request, owner, body, COMPLETIONS)


def _retrieve(request: Request, answer_id: str, owner: KeyOwner, endpoint: str) -> Any:
    match = RESPONSE_ID.fullmatch(answer_id)
    if match is None or (match.group(1) == "chatcmpl") != (endpoint == CHAT):
        raise not_found("completion", answer_id)
    _, job_id, seq = match.groups()
    with deployment(request).sessions.begin() as session:
        try:
            results = job_results(session, job_id, owner.tenant_id)
        except UnknownJob:
            raise not_found("completion", answer_id) from None
    result = next((r for r in results if r.seq == int(seq)), None)
    if result is None:
        raise not_found("completion", answer_id)
    if result.status in (RequestStatus.QUEUED, RequestStatus.ROUTED):
        return JSONResponse(
            {
                "error": {
                    "message": f"{answer_id} is not answered yet; ask again later",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "not_ready",
                    "id": answer_id,
                }
            },
            status_code=409,
            headers={"Retry-After": "1"},
        )
    return _answer(endpoint, job_id, result)


@router.get("/v1/chat/completions/{completion_id}", summary="A chat completion again, by id")
def retrieve_chat(completion_id: str, request: Request, owner: Tenant) -> Any:
    return _retrieve(request, completion_id, owner, CHAT)


@router.get("/v1/completions/{completion_id}", summary="A text completion again, by id")
def retrieve_completion(completion_id: str, request: Request, owner: Tenant) -> Any:
    return _retrieve(request, completion_id, owner, COMPLETIONS)
