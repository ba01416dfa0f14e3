"""Progress bars on stderr that read well on a terminal and never flood a log.

On a terminal a tqdm bar redraws itself in place. Anywhere else (a log file, a pipe to a
supervisor, CI) each redraw would be another line, or one endless line of carriage
returns, several times a second; there the bar prints a plain line at most every
LOG_INTERVAL_S seconds, plus its final state.
"""

from __future__ import annotations

import io
import sys
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["LOG_INTERVAL_S", "progress_bar"]

LOG_INTERVAL_S = 30.0


class _Lines(io.TextIOBase):
    """What tqdm writes, as whole lines: each redraw (`\\r` + status) becomes one line, and
    the clearing of a bar that does not stay (spaces) becomes nothing."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        for part in text.replace("\n", "\r").split("\r"):
            if part.strip():
                self._stream.write(part.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def progress_bar(
    total: int | None,
    desc: str,
    unit: str,
    *,
    stream: TextIO | None = None,
    **options: Any,
) -> tqdm[Any]:
    """A tqdm bar on `stream` (stderr by default), throttled to plain lines unless it is a
    terminal. `options` are tqdm's own (leave, delay, disable)."""
    stream = sys.stderr if stream is None else stream
    if stream.isatty():
        return tqdm(total=total, desc=desc, unit=unit, file=stream, **options)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=_Lines(stream),
        mininterval=LOG_INTERVAL_S,
        maxinterval=LOG_INTERVAL_S,
        ascii=True,
        ncols=100,
        **options,
    )
