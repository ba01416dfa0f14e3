"""/v1/files: batch input files in, batch output and error files out.

An upload (multipart, purpose `batch`) is checked whole before it is stored: every line as
a batch line (api.batch_file), at most MESSPLUS_MAX_BATCH_LINES lines and
MESSPLUS_MAX_FILE_BYTES bytes. A refused file stores nothing and lists its bad lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import UploadFile

from api.batch_file import BatchFile, read_batch_file
from api.deps import Deployment, Tenant, deployment, limited, require_media_type
from api.errors import ApiError, bad_request, not_found
from api.objects import OUTPUT_FILE_ID, file_object, output_bytes, output_file_object, page
from api.routes.common import zoo_names
from db.api_files import PART_BYTES, delete_file, file_parts, get_file, list_files, store_file
from db.api_keys import KeyOwner
from db.batches import get_batch
from db.errors import UnknownBatch, UnknownFile
from db.jobs import job_results

__all__ = ["check_batch_lines", "router"]

router = APIRouter(tags=["files"])

MAX_FILENAME_CHARS = 255
# Bad lines listed in a refusal; the count says how many more there were.
MAX_BAD_LINES_LISTED = 1000
_FORM_FIELDS = {"file", "purpose"}


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    handle.seek(0)
    while chunk := handle.read(PART_BYTES):
        yield chunk


def _refuse_lines(checked: BatchFile, limit: int, what: str) -> None:
    """400 for a file with bad lines: the first few in the message, all (up to
    MAX_BAD_LINES_LISTED) numbered in `errors`. Nothing is stored."""
    if checked.lines == 0:
        raise bad_request(f"{what} has no lines", param="file", code="empty_file")
    if checked.lines > limit:
        raise bad_request(
            f"{what} has {checked.lines} lines, at most {limit} per batch "
            "(MESSPLUS_MAX_BATCH_LINES); nothing stored",
            param="file",
            code="too_many_lines",
        )
    if not checked.bad:
        return
    bad = sorted(checked.bad, key=lambda b: b.line)
    shown = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:3])
    more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
    raise ApiError(
        400,
        f"{what} has {len(bad)} bad line(s), nothing stored: {shown}{more}",
        param="file",
        code="invalid_batch_file",
        extra={
            "bad_lines": len(bad),
            "errors": [{"line": b.line, "message": b.reason} for b in bad[:MAX_BAD_LINES_LISTED]],
        },
    )


def check_batch_lines(
    found: Deployment, chunks: Iterator[bytes], what: str, *, keep: bool = True
) -> BatchFile:
    """Read and check a batch file's lines (thread pool: it asks the database for the zoo);
    with `keep`, the requests they make."""
    with found.sessions.begin() as session:
        zoo = zoo_names(session)
    config = found.settings
    checked = read_batch_file(
        chunks,
        zoo=zoo,
        max_prompt_bytes=config.max_prompt_bytes,
        max_tokens=config.max_tokens,
        max_lines=config.max_batch_lines,
        keep=keep,
    )
    _refuse_lines(checked, config.max_batch_lines, what)
    return checked


@router.post(
    "/v1/files",
    summary="Upload a batch input file (JSON lines, purpose=batch)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "purpose": {"type": "string", "enum": ["batch"]},
                        },
                        "required": ["file", "purpose"],
                    }
                }
            },
        }
    },
)
async def upload_file(request: Request, owner: Tenant) -> dict[str, Any]:
    found = deployment(request)
    require_media_type(request, "multipart/form-data")
    form = await limited(request, found.upload_limit).form(max_files=1, max_fields=4)
    try:
        if unknown := sorted(set(form.keys()) - _FORM_FIELDS):
            raise bad_request(f"unsupported form field(s): {', '.join(unknown[:5])}")
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose != "batch":
            raise bad_request(
                f"purpose must be 'batch', got {purpose!r}"
                if isinstance(purpose, str)
                else "missing form field 'purpose' (batch)",
                param="purpose",
                code="invalid_purpose",
            )
        if not isinstance(upload, UploadFile):
            raise bad_request("missing form field 'file' (a file part)", param="file")
        size = upload.size or 0
        if size > found.settings.max_file_bytes:
            raise ApiError(
                413,
                f"file is {size} bytes, at most {found.settings.max_file_bytes} "
                "(MESSPLUS_MAX_FILE_BYTES)",
                code="file_too_large",
            )
        # Shown back to the tenant and stored as text: no control characters, valid UTF-8.
        printable = "".join(c for c in upload.filename or "" if c.isprintable())
        filename = printable.encode("utf-8", "replace").decode()[:MAX_FILENAME_CHARS]
        filename = filename or "upload.jsonl"
        handle = upload.file
        checked = await run_in_threadpool(
            lambda: check_batch_lines(found, _chunks(handle), "file", keep=False)
        )

        def store() -> dict[str, Any]:
            with found.sessions.begin() as session:
                stored = store_file(
                    session,
                    owner.tenant_id,
                    purpose="batch",
                    filename=filename,
                    parts=_chunks(handle),
                    lines=checked.lines,
                )
                return file_object(stored)

        return await run_in_threadpool(store)
    finally:
        await form.close()


@router.get("/v1/files", summary="List the tenant's uploaded files, newest first")
def list_uploaded(
    request: Request,
    owner: Tenant,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    with deployment(request).sessions.begin() as session:
        try:
            files, has_more = list_files(session, owner.tenant_id, limit=limit, after=after)
        except UnknownFile:
            raise not_found("file", after or "") from None
        return page([file_object(f) for f in files], has_more)


def _output(
    found: Deployment, file_id: str, owner: KeyOwner
) -> tuple[dict[str, Any], bytes] | None:
    """(file object, content) of a batch's output or error file, or None if the id is not
    one. 404 unless the batch is the tenant's, is finished, and the file exists."""
    match = OUTPUT_FILE_ID.fullmatch(file_id)
    if match is None:
        return None
    job_id, kind = match.groups()
    with found.sessions.begin() as session:
        try:
            view = get_batch(session, job_id, owner.tenant_id)
        except UnknownBatch:
            raise not_found("file", file_id) from None
        if not view.progress.finished or (kind == "errors" and not view.progress.failed):
            raise not_found("file", file_id)
        results = job_results(session, job_id, owner.tenant_id)
    content = output_bytes(view.batch.endpoint, job_id, results, kind)
    return output_file_object(view, kind, len(content)), content


@router.get("/v1/files/{file_id}", summary="A file's details")
def retrieve_file(file_id: str, request: Request, owner: Tenant) -> dict[str, Any]:
    found = deployment(request)
    output = _output(found, file_id, owner)
    if output is not None:
        return output[0]
    with found.sessions.begin() as session:
        try:
            return file_object(get_file(session, file_id, owner.tenant_id))
        except UnknownFile:
            raise not_found("file", file_id) from None


@router.get(
    "/v1/files/{file_id}/content",
    summary="A file's content: the upload as sent, or a batch's output or errors (JSON lines)",
    response_class=Response,
)
def file_content(file_id: str, request: Request, owner: Tenant) -> Response:
    found = deployment(request)
    output = _output(found, file_id, owner)
    if output is not None:
        return Response(output[1], media_type="application/jsonl")
    with found.sessions.begin() as session:
        try:
            get_file(session, file_id, owner.tenant_id)
        except UnknownFile:
            raise not_found("file", file_id) from None

    def parts() -> Iterator[bytes]:
        with found.sessions.begin() as session:
            yield from file_parts(session, file_id)

    return StreamingResponse(parts(), media_type="application/jsonl")


@router.delete("/v1/files/{file_id}", summary="Delete an uploaded file")
def remove_file(file_id: str, request: Request, owner: Tenant) -> dict[str, Any]:
    found = deployment(request)
    if _output(found, file_id, owner) is not None:
        raise bad_request(
            "a batch's output and error files are read from its requests; they cannot be deleted",
            code="output_file",
        )
    with found.sessions.begin() as session:
        try:
            delete_file(session, file_id, owner.tenant_id)
        except UnknownFile:
            raise not_found("file", file_id) from None
    return {"id": file_id, "object": "file", "deleted": True}
