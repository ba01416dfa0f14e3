"""Batch input files: OpenAI's JSON lines, checked whole before anything is stored.

Each line is {"custom_id": str, "method": "POST", "url": ENDPOINT, "body": {...}}, the body
checked by the same rules as the interactive routes (api.calls). The rule is the one
`messplus submit` follows: a file with bad lines is refused whole, every bad line named
with its number, so a fixed file is simply sent again. Blank lines are skipped and a
UTF-8 byte order mark is dropped, as `messplus submit` does. The file is read in chunks,
line by line, so checking it never holds more than its parsed requests.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from api.calls import ENDPOINTS, CallError, to_request
from db.jobs import NewRequest
from workers.cli._input import BadLine, decode_line

__all__ = ["MAX_CUSTOM_ID_CHARS", "BatchFile", "read_batch_file"]

MAX_CUSTOM_ID_CHARS = 512
_LINE_KEYS = ("custom_id", "method", "url", "body")


@dataclass
class BatchFile:
    """What a batch file says: its endpoint, its requests, and its bad lines (if any)."""

    endpoint: str | None = None
    requests: list[NewRequest] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    lines: int = 0


def _lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(1-based number, bytes) of every line, across chunk boundaries."""
    number, rest, first = 0, b"", True
    for chunk in chunks:
        if first:
            chunk, first = chunk.removeprefix(b"\xef\xbb\xbf"), False
        rest += chunk
        *complete, rest = rest.split(b"\n")
        for line in complete:
            number += 1
            yield number, line
    if rest:
        yield number + 1, rest


def _custom_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_CUSTOM_ID_CHARS:
        raise CallError(f"custom_id must be a string of 1 to {MAX_CUSTOM_ID_CHARS} characters")
    if "\x00" in value or not value.isprintable():
        raise CallError("custom_id must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CallError("custom_id contains an unpaired surrogate escape") from None
    return value


def read_batch_file(
    chunks: Iterable[bytes],
    *,
    zoo: Collection[str],
    max_prompt_bytes: int,
    max_tokens: int,
    max_lines: int,
    keep: bool = True,
) -> BatchFile:
    """Check every line; the requests (kept only with `keep`: an upload only checks) are
    only meaningful when `bad` is empty."""
    result = BatchFile()
    seen: dict[str, int] = {}
    for number, raw in _lines(chunks):
        if not raw.strip():
            continue
        result.lines += 1
        if result.lines > max_lines:
            continue  # counted, reported once by the caller
        try:
            request = _line(raw, number, result, seen, zoo, max_prompt_bytes, max_tokens)
            if keep:
                result.requests.append(request)
        except CallError as exc:
            result.bad.append(BadLine(number, str(exc)))
        except ValueError as exc:  # decode_line: not UTF-8, not JSON
            result.bad.append(BadLine(number, str(exc)))
    return result


def _line(
    raw: bytes,
    number: int,
    result: BatchFile,
    seen: dict[str, int],
    zoo: Collection[str],
    max_prompt_bytes: int,
    max_tokens: int,
) -> NewRequest:
    value = decode_line(raw, constants=False)
    if not isinstance(value, dict):
        raise CallError("each line must be a JSON object with " + ", ".join(_LINE_KEYS))
    if unknown := sorted(set(value) - set(_LINE_KEYS)):
        raise CallError(f"unknown key(s) {', '.join(repr(key[:40]) for key in unknown[:5])}")
    if missing := [key for key in _LINE_KEYS if key not in value]:
        raise CallError(f"missing key(s) {', '.join(map(repr, missing))}")
    custom_id = _custom_id(value["custom_id"])
    if value["method"] != "POST":
        raise CallError("method must be 'POST'")
    url = value["url"]
    if url not in ENDPOINTS:
        raise CallError(f"url must be one of {', '.join(ENDPOINTS)}")
    if result.endpoint is None:
        result.endpoint = url
    elif url != result.endpoint:
        raise CallError(f"url {url!r} differs from the file's first line ({result.endpoint!r})")
    if custom_id in seen:
        raise CallError(f"custom_id {custom_id!r} repeats line {seen[custom_id]}")
    seen[custom_id] = number
    try:
        return to_request(
            value["body"],
            url,
            zoo=zoo,
            max_prompt_bytes=max_prompt_bytes,
            max_tokens=max_tokens,
            custom_id=custom_id,
        )
    except CallError as exc:
        raise CallError(f"body: {exc}") from None
