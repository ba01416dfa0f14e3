"""Process logging: plain lines by default, one JSON object per line with MESSPLUS_LOG_JSON.

Configured once when a worker or the command line starts (never at import). Structured
fields passed through `extra` (request ids, job id, queue, model) become JSON keys, so an
operator can follow a request through the stages. Prompts and connection strings are never
logged: tasks log ids only, and the task arguments Celery attaches to its own records are
left out of the JSON (see JsonFormatter).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "configure_logging"]

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}
# Celery passes each task record's context as `extra={"data": ...}`, with the message's
# arguments in it: whatever its sender put there, prompts included when a client errs.
_MESSAGE_CONTENT = frozenset({"args", "kwargs"})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if isinstance(data := extra.get("data"), dict):
            extra["data"] = {k: v for k, v in data.items() if k not in _MESSAGE_CONTENT}
        document |= extra
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(json_lines: bool, level: int | str = logging.INFO) -> None:
    """Send this process's logs to stderr, as JSON lines or plain text."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
