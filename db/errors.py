"""The errors db/ raises, so workers and the CLI can tell a caller's mistake from an outage.

Every error is a `DbError`: a task can turn all of them into a rejected message in one
`except`, while database outages stay SQLAlchemy's `OperationalError` and can be retried.
Lookup failures are also `LookupError`s and bad arguments `ValueError`s, so code that only
knows the standard library still catches them sensibly.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "BadDatabaseUrl",
    "DbError",
    "InvalidValue",
    "ModelInUse",
    "PositionTaken",
    "TenantExists",
    "UnknownApiKey",
    "UnknownBatch",
    "UnknownFile",
    "UnknownJob",
    "UnknownModel",
    "UnknownPredictorVersion",
    "UnknownRequest",
    "UnknownTenant",
]


class DbError(Exception):
    """Base of every error raised on purpose by db/."""


class BadDatabaseUrl(DbError, ValueError):
    """A database URL that is not one, or names a database messplus does not run on."""


class InvalidValue(DbError, ValueError):
    """An argument the schema would reject; raised before touching the database."""


class PositionTaken(InvalidValue):
    """Models would share a zoo position; `in_the_way` are the enabled models already
    holding a position asked for, which the caller names so the user can act on them."""

    def __init__(self, clashes: dict[int, list[str]], in_the_way: list[str]) -> None:
        detail = "; ".join(f"{p}: {', '.join(n)}" for p, n in sorted(clashes.items()))
        super().__init__(f"models would share a position ({detail})")
        self.in_the_way = in_the_way


class ModelInUse(DbError):
    """A zoo model requests were routed to: its rows are history and cannot be removed."""

    def __init__(self, model: str, routed: int, answers: int) -> None:
        super().__init__(
            f"model {model} has been routed {routed} request(s) and has {answers} stored "
            "answer(s); its history stays for reports and retraining"
        )
        self.model = model


class TenantExists(DbError):
    """A tenant with this name already exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"tenant {name!r} already exists")
        self.name = name


class UnknownTenant(DbError, LookupError):
    """No tenant with this name or id."""

    def __init__(self, tenant: str | int) -> None:
        super().__init__(f"unknown tenant {tenant!r}")
        self.tenant = tenant


class UnknownJob(DbError, LookupError):
    """No job with this id for the asking tenant.

    Raised both for jobs that do not exist and for jobs of other tenants, with the same
    message, so a tenant cannot probe which job ids exist.
    """

    def __init__(self, job_id: str) -> None:
        super().__init__(f"unknown job {job_id!r}")
        self.job_id = job_id


class UnknownRequest(DbError, LookupError):
    """Request ids that do not exist (or belong to another tenant)."""

    def __init__(self, request_ids: Iterable[int]) -> None:
        self.request_ids = sorted(set(request_ids))
        super().__init__(f"unknown request id(s): {', '.join(map(str, self.request_ids))}")


class UnknownModel(DbError, LookupError):
    """No zoo model with this name or id."""

    def __init__(self, model: str | int) -> None:
        super().__init__(f"unknown model {model!r}")
        self.model = model


class UnknownPredictorVersion(DbError, LookupError):
    """No predictor version with this id."""

    def __init__(self, version_id: int) -> None:
        super().__init__(f"unknown predictor version {version_id}")
        self.version_id = version_id


class UnknownApiKey(DbError, LookupError):
    """No API key with this id for the tenant."""

    def __init__(self, key_id: int) -> None:
        super().__init__(f"unknown API key {key_id}")
        self.key_id = key_id


class UnknownFile(DbError, LookupError):
    """No uploaded file with this id for the asking tenant (or another tenant's: the same)."""

    def __init__(self, file_id: str) -> None:
        super().__init__(f"unknown file {file_id!r}")
        self.file_id = file_id


class UnknownBatch(DbError, LookupError):
    """No batch with this id for the asking tenant (or another tenant's: the same)."""

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"unknown batch {batch_id!r}")
        self.batch_id = batch_id
