"""The JSON objects the API answers with, in OpenAI's shapes, and the ids they carry.

Ids are derived from the job's id (a random UUID), never from row numbers, so they say
nothing about how many requests other tenants made:

- batch `batch_<job>`, its output file `file-<job>-output` (every request, in order: a
  `response` for answered ones, an `error` for failed ones) and error file
  `file-<job>-errors` (the failed ones again), rendered from the stored requests when
  read (Postgres is their only copy);
- an answer `chatcmpl-<job>-<seq>` (chat) or `cmpl-<job>-<seq>` (text completion); the
  feedback route rates it by that id, and GET /v1/chat/completions/{id} reads it again.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.calls import CHAT
from db.batches import CANCELLED_REASON, BatchView
from db.jobs import JobResult
from db.models import ApiFile, RequestStatus
from workers.triton_client import estimate_tokens

__all__ = [
    "BATCH_ID",
    "OUTPUT_FILE_ID",
    "RESPONSE_ID",
    "Failure",
    "answer_body",
    "batch_object",
    "failure",
    "file_object",
    "output_bytes",
    "output_file_id",
    "output_file_object",
    "page",
    "response_id",
    "unix",
]

BATCH_ID = re.compile(r"batch_([0-9a-f]{32})")
OUTPUT_FILE_ID = re.compile(r"file-([0-9a-f]{32})-(output|errors)")
RESPONSE_ID = re.compile(r"(chatcmpl|cmpl)-([0-9a-f]{32})-(\d{1,9})")
COMPLETION_WINDOW_S = 24 * 3600


def unix(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def page(data: Sequence[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """A cursor page as the official client pages it: `after` = the last id seen."""
    return {
        "object": "list",
        "data": list(data),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def file_object(file: ApiFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "object": "file",
        "bytes": file.bytes,
        "created_at": unix(file.created_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "expires_at": None,
    }


def output_file_id(job_id: str, kind: str) -> str:
    return f"file-{job_id}-{kind}"


def output_file_object(view: BatchView, kind: str, size: int) -> dict[str, Any]:
    job_id = view.batch.job_id
    return {
        "id": output_file_id(job_id, kind),
        "object": "file",
        "bytes": size,
        "created_at": unix(view.finished_at),
        "filename": f"batch_{job_id}_{kind}.jsonl",
        "purpose": "batch_output",
        "status": "processed",
        "expires_at": None,
    }


def _status(view: BatchView) -> str:
    progress = view.progress
    if view.batch.cancelling_at is not None:
        return "cancelled" if progress.finished else "cancelling"
    if not progress.finished:
        return "in_progress"
    # Validation happens before a batch exists, so only a batch none of whose requests
    # could be answered is failed; one with some answers is completed.
    return "failed" if progress.done == 0 else "completed"


def batch_object(view: BatchView) -> dict[str, Any]:
    batch, progress = view.batch, view.progress
    status = _status(view)
    finished = unix(view.finished_at)
    job_id = batch.job_id
    return {
        "id": f"batch_{job_id}",
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": None,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": status,
        "output_file_id": output_file_id(job_id, "output") if progress.finished else None,
        "error_file_id": (
            output_file_id(job_id, "errors") if progress.finished and progress.failed else None
        ),
        "created_at": unix(batch.created_at),
        "in_progress_at": unix(batch.created_at),
        "expires_at": unix(batch.created_at + dt.timedelta(seconds=COMPLETION_WINDOW_S)),
        "finalizing_at": None,
        "completed_at": finished if status == "completed" else None,
        "failed_at": finished if status == "failed" else None,
        "expired_at": None,
        "cancelling_at": unix(batch.cancelling_at),
        "cancelled_at": finished if status == "cancelled" else None,
        "request_counts": {
            "total": progress.total,
            "completed": progress.done,
            "failed": progress.failed,
        },
        "metadata": batch.metadata_json,
    }


def response_id(endpoint: str, job_id: str, seq: int) -> str:
    return f"{'chatcmpl' if endpoint == CHAT else 'cmpl'}-{job_id}-{seq}"


def answer_body(endpoint: str, job_id: str, result: JobResult) -> dict[str, Any]:
    """A done request as chat.completion or text_completion; `model` names who answered."""
    text = result.text or ""
    completion_tokens = result.tokens if result.tokens is not None else estimate_tokens(text)
    prompt_tokens = (
        result.prompt_tokens if result.prompt_tokens is not None else estimate_tokens(result.prompt)
    )
    finish_reason = result.finish_reason or "stop"
    if endpoint == CHAT:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish_reason,
            "logprobs": None,
        }
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}
        kind = "text_completion"
    return {
        "id": response_id(endpoint, job_id, result.seq),
        "object": kind,
        "created": unix(result.created_at),
        "model": result.served_model,
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a request has no answer, in words for the tenant: the stored reason names
    servers and their errors, which are the operator's business."""

    status: int
    code: str
    message: str


def failure(reason: str | None) -> Failure:
    """The status, code and message of a failed request. Stored reasons are written for
    tenants (`<model>: unavailable`, `<model>: rejected: <what the server said>`, with
    addresses and paths taken out: workers.errors), so they are shown as they are."""
    text = reason or "the request failed"
    if text == CANCELLED_REASON:
        return Failure(409, "batch_cancelled", "the batch was cancelled before this request ran")
    kind = text.partition(": ")[2]
    if kind.startswith("unavailable"):
        return Failure(503, "model_unavailable", f"{text}; send the request again later")
    if kind.startswith("rejected"):
        return Failure(400, "model_rejected", text)
    return Failure(500, "request_failed", text)


def _line(endpoint: str, job_id: str, result: JobResult) -> dict[str, Any]:
    line: dict[str, Any] = {"id": f"batch_req_{job_id}_{result.seq}", "custom_id": result.custom_id}
    if result.status is RequestStatus.DONE:
        line["response"] = {
            "status_code": 200,
            "request_id": f"req_{job_id}_{result.seq}",
            "body": answer_body(endpoint, job_id, result),
        }
        line["error"] = None
    else:
        why = failure(result.failure_reason)
        line["response"] = None
        line["error"] = {"code": why.code, "message": why.message}
    return line


def output_bytes(endpoint: str, job_id: str, results: Sequence[JobResult], kind: str) -> bytes:
    """The output file (every request) or the error file (the failed ones) of a batch."""
    chosen = (
        results if kind == "output" else [r for r in results if r.status is RequestStatus.FAILED]
    )
    return b"".join(
        json.dumps(_line(endpoint, job_id, r), ensure_ascii=False).encode("utf-8") + b"\n"
        for r in chosen
    )
