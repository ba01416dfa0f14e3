"""Files tenants upload through the HTTP API, kept in Postgres in parts.

A file is stored in parts of PART_BYTES so that neither storing nor reading it back holds
more than one part in memory, whatever its size (up to MESSPLUS_MAX_FILE_BYTES). Like jobs,
a file is reachable only through its tenant: another tenant's file id raises the same
UnknownFile as an id that never existed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db._paging import newest_first
from db.errors import UnknownFile
from db.models import ApiFile, ApiFilePart

__all__ = ["PART_BYTES", "delete_file", "file_parts", "get_file", "list_files", "store_file"]

PART_BYTES = 4 * 1024 * 1024


def store_file(
    session: Session,
    tenant_id: int,
    *,
    purpose: str,
    filename: str,
    parts: Iterable[bytes],
    lines: int,
) -> ApiFile:
    """Store a file from its parts (each at most PART_BYTES, all but the last full)."""
    file = ApiFile(
        id=f"file-{uuid.uuid4().hex}",
        tenant_id=tenant_id,
        purpose=purpose,
        filename=filename,
        bytes=0,
        lines=lines,
    )
    session.add(file)
    session.flush()
    for number, data in enumerate(parts):
        session.add(ApiFilePart(file_id=file.id, part=number, data=data))
        file.bytes += len(data)
        session.flush()
    return file


def get_file(session: Session, file_id: str, tenant_id: int) -> ApiFile:
    file = session.scalar(
        select(ApiFile).where(ApiFile.id == file_id, ApiFile.tenant_id == tenant_id)
    )
    if file is None:
        raise UnknownFile(file_id)
    return file


def list_files(
    session: Session, tenant_id: int, *, limit: int, after: str | None = None
) -> tuple[list[ApiFile], bool]:
    """The tenant's files, newest first, from just after the file `after`; and has_more."""
    cursor = None
    if after is not None:
        file = get_file(session, after, tenant_id)
        cursor = (file.created_at, file.id)
    query = select(ApiFile).where(ApiFile.tenant_id == tenant_id)
    return newest_first(session, query, ApiFile.created_at, ApiFile.id, after=cursor, limit=limit)


def file_parts(session: Session, file_id: str) -> Iterator[bytes]:
    """The file's bytes, one part per query, in order."""
    count = session.scalar(
        select(ApiFilePart.part)
        .where(ApiFilePart.file_id == file_id)
        .order_by(ApiFilePart.part.desc())
        .limit(1)
    )
    for number in range(0 if count is None else count + 1):
        data = session.scalar(
            select(ApiFilePart.data).where(
                ApiFilePart.file_id == file_id, ApiFilePart.part == number
            )
        )
        if data is not None:
            yield data


def delete_file(session: Session, file_id: str, tenant_id: int) -> None:
    """Delete a file and its parts. Batches made from it keep their requests."""
    file = get_file(session, file_id, tenant_id)
    session.execute(delete(ApiFilePart).where(ApiFilePart.file_id == file_id))
    session.delete(file)
    session.flush()
