"""Configuration from MESSPLUS_* environment variables, validated once at start-up.

Every variable has one documented default (see the README's configuration table); an
unknown MESSPLUS_ variable is an error, so a typo never silently falls back to a default.
Connection strings come only from here (and db.engine for the database URL). Both are
checked for their form here, once: a database messplus does not run on or a broker
transport kombu does not know would otherwise surface later as an ImportError or a
KeyError deep inside SQLAlchemy or Celery.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from db.engine import DATABASE_URL_ENV, database_url_from_env, normalize_database_url
from db.errors import BadDatabaseUrl

__all__ = [
    "BROKER_URL_FORM",
    "BROKER_VISIBILITY_TIMEOUT_S",
    "PREFIX",
    "Settings",
    "SettingsError",
    "api_broker_problem",
    "broker_url_problem",
    "load_settings",
]

PREFIX = "MESSPLUS_"
BROKER_URL_FORM = "redis://HOST:PORT/DB (memory:// only within one process)"
# How long Redis waits for an unacknowledged (late-ack) task before redelivering it.
BROKER_VISIBILITY_TIMEOUT_S = 3600


class SettingsError(ValueError):
    """A MESSPLUS_ variable that is unknown or has an unusable value."""


@dataclass(frozen=True)
class Settings:
    """What a worker or client process needs to know about its surroundings."""

    database_url: str
    broker_url: str = "redis://127.0.0.1:6379/0"
    triton_url: str = "grpc://127.0.0.1:8001"
    chunk_size: int = 256
    max_prompt_bytes: int = 16_384
    max_file_bytes: int = 256 * 1024 * 1024
    max_tokens: int = 256
    infer_timeout_s: float = 60.0
    # A chunk that finds Triton unavailable is retried this often, waiting each time between
    # half and all of min(infer_backoff_max_s, infer_backoff_s * 2**k) (workers/backoff.py):
    # with the defaults its retries span 60.5-121 s, so an outage of up to a minute (a
    # Triton restart) costs latency, not requests.
    infer_retries: int = 8
    infer_backoff_s: float = 1.0
    infer_backoff_max_s: float = 30.0
    task_time_limit_s: float = 600.0
    router_seed: int | None = None
    log_json: bool = False
    retrain_hour: int = 3
    retrain_minute: int = 0
    retrain_time_limit_s: float = 3000.0
    reconcile_every_s: float = 60.0
    stuck_after_s: float = 300.0
    metrics_dir: str | None = None
    metrics_port: int = 9464
    # The HTTP API (api/): requests a key may make per second, and how many at once above
    # that rate; lines in one uploaded batch file; how long a chat call waits for its answer.
    api_rate_per_s: float = 50.0
    api_rate_burst: int = 100
    max_batch_lines: int = 50_000
    api_wait_s: float = 60.0

    def __post_init__(self) -> None:
        try:
            normalize_database_url(self.database_url)
        except BadDatabaseUrl as exc:
            raise SettingsError(f"{DATABASE_URL_ENV}: {exc}") from None
        if problem := broker_url_problem(self.broker_url):
            raise SettingsError(f"{PREFIX}BROKER_URL: {problem}")
        for name in ("chunk_size", "max_prompt_bytes", "max_file_bytes", "max_tokens"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be >= 1")
        if self.infer_retries < 0:
            raise SettingsError(f"{PREFIX}INFER_RETRIES must be >= 0")
        if not 0 < self.infer_backoff_s <= self.infer_backoff_max_s < BROKER_VISIBILITY_TIMEOUT_S:
            # A retry waits in its worker unacknowledged; past the visibility timeout Redis
            # would hand it to a second worker as well.
            raise SettingsError(
                f"need 0 < {PREFIX}INFER_BACKOFF_S <= {PREFIX}INFER_BACKOFF_MAX_S < "
                f"{BROKER_VISIBILITY_TIMEOUT_S} (the broker's visibility timeout)"
            )
        if not self.infer_timeout_s > 0 or not self.task_time_limit_s > 0:
            raise SettingsError("timeouts must be > 0")
        if not 0 < self.retrain_time_limit_s < BROKER_VISIBILITY_TIMEOUT_S:
            # Past the visibility timeout Redis hands the unacknowledged task to another
            # trainer while the first is still running.
            raise SettingsError(
                f"{PREFIX}RETRAIN_TIME_LIMIT_S must be > 0 and below the broker's "
                f"visibility timeout ({BROKER_VISIBILITY_TIMEOUT_S} s)"
            )
        if not 0 <= self.retrain_hour <= 23:
            raise SettingsError(f"{PREFIX}RETRAIN_HOUR must be 0..23")
        if not self.reconcile_every_s > 0 or not self.stuck_after_s > 0:
            raise SettingsError(f"{PREFIX}RECONCILE_EVERY_S and STUCK_AFTER_S must be > 0")
        if not 0 <= self.retrain_minute <= 59:
            raise SettingsError(f"{PREFIX}RETRAIN_MINUTE must be 0..59")
        if self.metrics_dir is not None and not os.path.isabs(self.metrics_dir):
            # Workers and the exporter must name one directory; a relative path would be
            # resolved against each process's own working directory.
            raise SettingsError(f"{PREFIX}METRICS_DIR must be an absolute path")
        if not self.api_rate_per_s > 0 or self.api_rate_burst < 1 or self.max_batch_lines < 1:
            raise SettingsError(
                f"{PREFIX}API_RATE_PER_S must be > 0, {PREFIX}API_RATE_BURST and "
                f"{PREFIX}MAX_BATCH_LINES >= 1"
            )
        if not self.api_wait_s > 0:
            raise SettingsError(f"{PREFIX}API_WAIT_S must be > 0")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(f"{PREFIX}METRICS_PORT must be 0..65535 (0: any free port)")


def broker_url_problem(url: str) -> str | None:
    """Why kombu could not use `url` as a broker, or None.

    kombu reads a string without `://` as a host of its default transport (AMQP), so
    "notaurl" would quietly become amqp://aurl; such strings are refused here. The URL is
    never quoted back: it may carry a password.
    """
    from kombu.transport import resolve_transport
    from kombu.utils.url import parse_url

    scheme, separator, _ = url.partition("://")
    if not separator or not scheme:
        return f"not a broker URL; expected {BROKER_URL_FORM}"
    try:
        parse_url(url)
    except ValueError as exc:
        return str(exc)
    try:
        resolve_transport(scheme)
    except KeyError:
        return f"unknown broker transport {scheme!r}; expected {BROKER_URL_FORM}"
    except ImportError as exc:
        return f"broker transport {scheme!r} needs a library that is not installed ({exc})"
    return None


def api_broker_problem(url: str) -> str | None:
    """Why the HTTP API cannot run on this broker, or None: it keeps its rate limits in
    the broker's Redis, shared by every API process. Asked by `messplus api serve` before
    it starts uvicorn, and by the app itself when started another way."""
    scheme = url.partition("://")[0]
    if scheme in ("redis", "rediss"):
        return None
    return (
        "the API keeps rate limits in the broker's Redis: MESSPLUS_BROKER_URL must be "
        f"redis:// or rediss://, not {scheme}://"
    )


def _convert(name: str, raw: str, kind: str) -> object:
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            value = float(raw)
            if not math.isfinite(value):  # passes `> 0` checks, then breaks timedelta
                raise ValueError(raw)
            return value
        if kind == "bool":
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError(raw)
            return raw.lower() in {"1", "true", "yes"}
        if kind == "int | None":
            return int(raw) if raw else None
        if kind == "str | None":
            return raw or None
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; raises SettingsError naming the offending variable."""
    environ = os.environ if environ is None else environ
    known = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, object] = {}
    for key, raw in environ.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :].lower()
        if name not in known:
            raise SettingsError(f"unknown setting {key} (known: {', '.join(sorted(known))})")
        if key != DATABASE_URL_ENV:
            values[name] = _convert(name, raw, known[name])
    values["database_url"] = database_url_from_env(environ)
    return Settings(**values)  # type: ignore[arg-type]
