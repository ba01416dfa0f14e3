"""Checking what users hand the client: JSON-lines files, alphas, names, router knobs, times.

Files are all or nothing. A batch half submitted is worse than one refused: the user would
have to work out which lines went through before fixing and resending the rest. So every
line is checked first, each bad line is reported with its 1-based line number, and the
command sends nothing unless the whole file is good.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from workers.cli import CliError

__all__ = [
    "BadLine",
    "alpha",
    "check_lines",
    "decode_line",
    "finite_float",
    "iter_jsonl",
    "name",
    "point_in_time",
    "positive_int",
    "prompt_of",
    "read_jsonl",
    "refuse",
    "tcp_port",
]

T = TypeVar("T")

# A duration before now: a number and one unit letter (seconds to weeks), as in 90m or 7d.
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}

# Bad lines listed one by one before the summary; a file that is wrong throughout (say,
# CSV passed by mistake) should not scroll the terminal away.
MAX_LISTED = 50
MAX_NAME_CHARS = 200
# bool before int: True is an int to isinstance.
_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    ((int, float), "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


@dataclass(frozen=True, slots=True)
class BadLine:
    """Why one line of a file cannot be used."""

    line: int
    reason: str


def finite_float(raw: str) -> float:
    """An argparse type: NaN or infinity would pass range checks written as `not x < 0`
    and cannot be stored in JSON, so they are refused on the command line."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {raw!r}")
    return value


def positive_int(raw: str) -> int:
    """An argparse type for counts that must be at least 1."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def tcp_port(raw: str) -> int:
    """An argparse type: a TCP port, 0 meaning any free one."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {raw!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value


def point_in_time(raw: str, now: dt.datetime) -> dt.datetime:
    """An ISO 8601 time with its UTC offset, or a duration before `now` (90m, 24h, 7d).

    A time without an offset is refused rather than read as local or UTC: whichever is
    guessed, an operator in another zone gets a window hours off without noticing.
    Raises ValueError naming what was expected.
    """
    text = raw.strip()
    if match := _DURATION.fullmatch(text):
        return now - dt.timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 time (2025-03-01T12:00Z) nor a duration ago (90m, 24h, 7d): {raw!r}"
        ) from None
    if value.tzinfo is None:
        raise ValueError(f"{raw!r} has no UTC offset (add Z or +HH:MM)")
    return value


def alpha(value: float) -> float:
    """The SLA target, checked before the database would refuse it less readably."""
    from router.sla import validate_alpha

    try:
        return validate_alpha(value)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def name(value: str, what: str) -> str:
    """A tenant or model name: what the user typed is what is stored and matched later,
    so names with stray spaces are refused rather than silently trimmed."""
    if not value or value != value.strip() or len(value) > MAX_NAME_CHARS:
        raise CliError(
            f"{what} name must be 1 to {MAX_NAME_CHARS} characters without surrounding "
            f"spaces, got {value!r}"
        )
    return value


def iter_jsonl(path: Path, max_bytes: int) -> Iterator[tuple[int, object | BadLine]]:
    """Every non-blank line of `path` decoded as JSON, one at a time: (line number, value),
    or (line number, BadLine) for a line that does not parse.

    Streams: a file of any size allowed costs one line of memory. Blank lines are skipped
    (editors add them at the end). Whole-file problems (missing, unreadable, larger than
    `max_bytes`, also if it grows while read) raise CliError.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise CliError(f"{path} is {size} bytes, at most {max_bytes} (MESSPLUS_MAX_FILE_BYTES)")
        handle = path.open("rb")
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    read = 0
    with handle:
        for number, raw in enumerate(_lines(handle, path), start=1):
            read += len(raw)
            if read > max_bytes:  # grew after stat
                raise CliError(f"{path} is larger than {max_bytes} bytes (MESSPLUS_MAX_FILE_BYTES)")
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if raw.strip():
                yield number, _decode(number, raw)


def _lines(handle: BinaryIO, path: Path) -> Iterator[bytes]:
    try:
        yield from handle
    except OSError as exc:  # a directory opens, and fails on the first read
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def _decode(number: int, raw: bytes) -> object | BadLine:
    try:
        return decode_line(raw)
    except ValueError as exc:
        return BadLine(number, str(exc))


def read_jsonl(path: Path, max_bytes: int) -> tuple[list[tuple[int, object]], list[BadLine]]:
    """iter_jsonl's lines, all read: (line number, value) pairs for the lines that parse and
    a BadLine for each that does not. A file with nothing but blank lines raises CliError."""
    values: list[tuple[int, object]] = []
    bad: list[BadLine] = []
    for number, value in iter_jsonl(path, max_bytes):
        if isinstance(value, BadLine):
            bad.append(value)
        else:
            values.append((number, value))
    if not values and not bad:
        raise CliError(f"{path} is empty")
    return values, bad


def decode_line(raw: bytes, *, constants: bool = True) -> object:
    """One line of a JSON-lines file (or one JSON document) as a value; ValueError saying
    why not: invalid UTF-8, malformed JSON, or a key given twice (the parser would keep the
    last silently). Python's parser takes NaN and Infinity, which are not JSON; with
    `constants=False` they are refused too."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (byte {exc.start + 1} of the line)") from None
    try:
        if constants:
            return json.loads(text, object_pairs_hook=_no_duplicate_keys)
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        # Some of json's messages end in "at" already ("Invalid control character at").
        what = exc.msg.removesuffix(" at")
        raise ValueError(f"malformed JSON: {what} at column {exc.colno}") from None
    except _DuplicateKey as exc:
        raise ValueError(f"key {exc.args[0]!r} appears twice") from None
    except _NotJson as exc:
        raise ValueError(f"malformed JSON: {exc.args[0]} is not a JSON value") from None


class _NotJson(Exception):
    """Raised from inside json.loads for NaN, Infinity and -Infinity."""


def _no_constant(name: str) -> object:
    raise _NotJson(name)


def check_lines(
    values: Sequence[tuple[int, object]], parse: Callable[[object], T], bad: list[BadLine]
) -> list[tuple[int, T]]:
    """Apply `parse` to each value; a ValueError it raises becomes a BadLine in `bad`."""
    good: list[tuple[int, T]] = []
    for number, value in values:
        try:
            good.append((number, parse(value)))
        except ValueError as exc:
            bad.append(BadLine(number, str(exc)))
    return good


def refuse(path: Path, bad: list[BadLine], consequence: str) -> None:
    """Raise CliError for a file with bad lines, after listing each of them on stderr.

    One bad line is the error line itself; several are listed as `FILE:LINE: reason`
    first, so the user fixes them all in one go, then summarised.
    """
    if not bad:
        return
    bad = sorted(bad, key=lambda b: b.line)
    if len(bad) == 1:
        raise CliError(f"{path}:{bad[0].line}: {bad[0].reason} ({consequence})")
    for item in bad[:MAX_LISTED]:
        print(f"{path}:{item.line}: {item.reason}", file=sys.stderr)
    if len(bad) > MAX_LISTED:
        print(f"{path}: ... and {len(bad) - MAX_LISTED} more bad lines", file=sys.stderr)
    raise CliError(f"{path}: {len(bad)} bad lines, listed above ({consequence})")


def prompt_of(value: object, max_bytes: int) -> str:
    """The prompt of one submitted line: a JSON string, or an object {"prompt": ...}.

    Beyond emptiness and size, refuses what a database cannot store as text: NUL
    characters (Postgres rejects them) and unpaired surrogates from \\ud800-style escapes
    (not encodable as UTF-8).
    """
    if isinstance(value, dict):
        if unknown := sorted(set(value) - {"prompt"}):
            raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: 'prompt'")
        if "prompt" not in value:
            raise ValueError("object has no 'prompt' key")
        value = value["prompt"]
        if not isinstance(value, str):
            raise ValueError(f"'prompt' must be a string, got {_json_type(value)}")
    elif not isinstance(value, str):
        raise ValueError(f"expected a string or an object with 'prompt', got {_json_type(value)}")
    if not value.strip():
        raise ValueError("empty prompt")
    if "\x00" in value:
        raise ValueError("prompt contains a NUL character")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("prompt contains an unpaired surrogate escape (\\ud800-\\udfff)") from None
    if size > max_bytes:
        raise ValueError(f"prompt is {size} bytes, at most {max_bytes} (MESSPLUS_MAX_PROMPT_BYTES)")
    return value


class _DuplicateKey(Exception):
    """Raised from inside json.loads; turned into a BadLine by read_jsonl."""


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads keeps the last of repeated keys; a line that says two things is refused.
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _json_type(value: object) -> str:
    return next((label for kind, label in _JSON_TYPES if isinstance(value, kind)), "null")
