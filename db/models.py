"""The schema as typed SQLAlchemy models; migrations/ creates it, these classes query it.

Constraint names come from one naming convention so Alembic autogenerate can diff them
(it cannot diff anonymous constraints). Timestamps are stored as UTC and always come back
timezone-aware, on Postgres and SQLite alike, so callers never compare naive to aware.
Relationships are left out on purpose: the queries in db/ join explicitly and load only the
columns they need, which keeps bulk paths free of lazy loads.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "NAMING_CONVENTION",
    "ApiFile",
    "ApiFilePart",
    "ApiKey",
    "Base",
    "Batch",
    "DeadLetter",
    "Feedback",
    "Job",
    "ModelStats",
    "PendingRating",
    "PredictorVersion",
    "Request",
    "RequestStatus",
    "Response",
    "RoutingDecision",
    "SlaState",
    "Tenant",
    "UtcDateTime",
    "ZooModel",
    "utcnow",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The one clock db/ writes with, so every stored timestamp is comparable."""
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and returned timezone-aware on every backend.

    SQLite keeps no offset, so values are converted to UTC before writing and tagged as UTC
    when read; naive values are refused because their zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class RequestStatus(enum.StrEnum):
    """A request's life: queued -> routed -> done | failed; done and failed are final."""

    QUEUED = "queued"
    ROUTED = "routed"
    DONE = "done"
    FAILED = "failed"


# Ids of rows that grow without bound are 64-bit; SQLite only autoincrements a column
# declared exactly INTEGER PRIMARY KEY (which is 64-bit there anyway).
_BigId = BigInteger().with_variant(Integer(), "sqlite")

BigIdPk = Annotated[int, mapped_column(_BigId, primary_key=True, autoincrement=True)]
IntPk = Annotated[int, mapped_column(primary_key=True)]
CreatedAt = Annotated[dt.datetime, mapped_column(default=utcnow)]
UpdatedAt = Annotated[dt.datetime, mapped_column(default=utcnow, onupdate=utcnow)]
LongText = Annotated[str, mapped_column(Text)]
Counter = Annotated[int, mapped_column(BigInteger, default=0)]
TenantFk = Annotated[int, mapped_column(ForeignKey("tenants.id"))]
ModelFk = Annotated[int, mapped_column(ForeignKey("zoo_models.id"))]
RequestFk = Annotated[int, mapped_column(BigInteger, ForeignKey("requests.id"))]


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention and the Python-to-SQL type map."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute as is
        dt.datetime: UtcDateTime(),
        float: Double(),
        bytes: LargeBinary(),
        dict[str, Any]: JSON(),
        list[float]: JSON(),
    }


class Tenant(Base):
    """A customer with its own SLA target alpha and router settings (V, c, ...)."""

    __tablename__ = "tenants"
    __table_args__ = (CheckConstraint("alpha > 0 AND alpha < 1", name="alpha_in_unit_interval"),)

    id: Mapped[IntPk]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    alpha: Mapped[float]
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[CreatedAt]


class ZooModel(Base):
    """A model the router may choose; `position` orders the zoo cheapest first."""

    __tablename__ = "zoo_models"

    id: Mapped[IntPk]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    triton_model_name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(unique=True)
    cost_per_request: Mapped[float]
    cost_per_token: Mapped[float]
    cost_unit: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    # Jinja template turning chat messages into this model's prompt; None: the documented
    # default (workers.chat.DEFAULT_CHAT_TEMPLATE).
    chat_template: Mapped[str | None] = mapped_column(Text)


class Job(Base):
    """A batch of prompts submitted together; the unit a client polls."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[TenantFk]
    created_at: Mapped[CreatedAt]
    source: Mapped[str] = mapped_column(String(200))
    n_requests: Mapped[int]


class Request(Base):
    """One prompt of a job, tracked until it is done or failed."""

    __tablename__ = "requests"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s.value}'" for s in RequestStatus) + ")", name="status"
        ),
        Index("uq_requests_job_id_seq", "job_id", "seq", unique=True),
        # The reconciler scans non-final requests by age.
        Index("ix_requests_status_updated_at", "status", "updated_at"),
        # `messplus report --tenant T --since WHEN` reads a tenant's recent requests.
        Index("ix_requests_tenant_id_created_at", "tenant_id", "created_at"),
        # A batch's output names each line by its custom_id, and feedback finds it by it.
        Index("uq_requests_job_id_custom_id", "job_id", "custom_id", unique=True),
    )

    id: Mapped[BigIdPk]
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id"))
    tenant_id: Mapped[TenantFk]
    seq: Mapped[int]
    prompt: Mapped[LongText]
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.QUEUED.value)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    served_model_id: Mapped[int | None] = mapped_column(ForeignKey("zoo_models.id"))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    # Set for requests that came through the HTTP API: the batch line's custom_id, and
    # what the model worker needs beyond the prompt (workers.chat.RequestParams as JSON:
    # chat messages, max_tokens, temperature, stop). `prompt` stays the user's text, which
    # is what the router reads.
    custom_id: Mapped[str | None] = mapped_column(String(512))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class RoutingDecision(Base):
    """What the router knew and chose for one request; kept for audit and replay."""

    __tablename__ = "routing_decisions"

    request_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("requests.id"), primary_key=True)
    tenant_id: Mapped[TenantFk]
    t: Mapped[int] = mapped_column(BigInteger)
    # P(model satisfies the request), one per zoo model in position order.
    probabilities: Mapped[list[float]]
    virtual_queue: Mapped[float]
    explored: Mapped[bool]
    chosen_model_id: Mapped[ModelFk]
    # alpha - predicted satisfaction of the served model: what the router added to the
    # tenant's pending debt, taken back when the served answer's rating arrives.
    expected_debt: Mapped[float] = mapped_column(default=0.0, server_default="0")
    # The served model's predicted satisfaction: the SLA estimate's calibration is measured
    # against it when the rating arrives (see router.sla.UnratedLedger).
    predicted_satisfaction: Mapped[float] = mapped_column(default=0.0, server_default="0")
    predictor_version_id: Mapped[int | None] = mapped_column(ForeignKey("predictor_versions.id"))
    decided_at: Mapped[CreatedAt]


class Response(Base):
    """One model's answer to one request; several per request when the router explored."""

    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("request_id", "model_id"),)

    id: Mapped[BigIdPk]
    request_id: Mapped[RequestFk]
    model_id: Mapped[ModelFk]
    text: Mapped[LongText]
    tokens: Mapped[int]
    latency_s: Mapped[float]
    cost: Mapped[float]
    # From the replay zoo: would this answer satisfy the user? Drives simulated users.
    would_satisfy: Mapped[bool | None]
    created_at: Mapped[CreatedAt]
    # What the server reports where it can (vLLM: finish_reason, num_input_tokens).
    finish_reason: Mapped[str | None] = mapped_column(String(16))
    prompt_tokens: Mapped[int | None]


class Feedback(Base):
    """A user's rating of one model's answer; a later rating replaces an earlier one.

    Later means later in the order the rating was given in: `rated_at` (when the user rated,
    as submitted) and then `rating_seq` (the id its submission got, see PendingRating). A
    rating delivered late, after a newer one of the same answer, never replaces it.
    """

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("request_id", "model_id"),
        # `messplus sla --since` and the report read a tenant's recent ratings.
        Index("ix_feedback_tenant_id_received_at", "tenant_id", "received_at"),
    )

    id: Mapped[BigIdPk]
    request_id: Mapped[RequestFk]
    model_id: Mapped[ModelFk]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    satisfied: Mapped[bool]
    received_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    # The server default exists for migration 0007's ADD COLUMN; it copies updated_at.
    rated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=text("'1970-01-01 00:00:00+00:00'")
    )
    rating_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class PendingRating(Base):
    """A rating accepted from a user and not applied yet: the outbox between submitting and
    the feedback workers.

    Submitting stores it (so a rating a user was told is taken is in Postgres, whatever
    happens to the broker) and publishes its id; a feedback worker applies it and deletes
    it in one transaction; the reconciler publishes the ids of ratings left here again.
    It names an answer that existed when it was submitted (see db.pending_ratings).
    """

    __tablename__ = "pending_ratings"
    __table_args__ = (
        # The reconciler scans ratings untouched for a while.
        Index("ix_pending_ratings_updated_at", "updated_at"),
    )

    id: Mapped[BigIdPk]
    tenant_id: Mapped[TenantFk]
    request_id: Mapped[RequestFk]
    model_id: Mapped[ModelFk]
    satisfied: Mapped[bool]
    rated_at: Mapped[dt.datetime]
    received_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class PredictorVersion(Base):
    """A trained predictor, serialised as JSON bytes; at most one version is active."""

    __tablename__ = "predictor_versions"
    __table_args__ = (
        Index(
            "uq_predictor_versions_active",
            "active",
            unique=True,
            postgresql_where=text("active"),
            sqlite_where=text("active"),
        ),
    )

    id: Mapped[IntPk]
    created_at: Mapped[CreatedAt]
    # Deferred: listing versions must not pull every model's weights.
    blob: Mapped[bytes] = mapped_column(deferred=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(Text, default="")


class SlaState(Base):
    """A tenant's SLA bookkeeping, shared by every router worker and surviving restarts."""

    __tablename__ = "sla_states"
    __table_args__ = (
        CheckConstraint("virtual_queue >= 0 AND tracked_queue >= 0", name="queues_non_negative"),
    )

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    virtual_queue: Mapped[float] = mapped_column(default=0.0)
    tracked_queue: Mapped[float] = mapped_column(default=0.0)
    # Sum of (alpha - expected satisfaction) over served answers not rated yet: the debt the
    # router counts on while ratings are late or never come (see workers.routing).
    pending_debt: Mapped[float] = mapped_column(default=0.0, server_default="0")
    # The integral action the router adds to the queue when it decides, carried from chunk
    # to chunk (router.messplus.advance_shift).
    queue_shift: Mapped[float] = mapped_column(default=0.0, server_default="0")
    request_counter: Mapped[Counter]
    rated_count: Mapped[Counter]
    satisfied_count: Mapped[Counter]
    updated_at: Mapped[UpdatedAt]


class SlaCalibration(Base):
    """Per tenant and served model, the sums behind the SLA estimate of unrated answers.

    The database form of router.sla.UnratedLedger: routers add served answers (unrated,
    at their predicted satisfaction), feedback workers move them to rated and add their
    residuals, each with increments computed in SQL.
    """

    __tablename__ = "sla_calibration"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("zoo_models.id"), primary_key=True)
    unrated: Mapped[Counter]
    unrated_predicted: Mapped[float] = mapped_column(default=0.0)
    rated: Mapped[Counter]
    residual: Mapped[float] = mapped_column(default=0.0)
    residual_squared: Mapped[float] = mapped_column(default=0.0)


class ModelStats(Base):
    """What the zoo has shown so far, per model: ratings and charged cost.

    The router's fast-learning layer. Feedback workers add every rating (served answers
    and explored ones) and model workers every newly charged cost, with increments computed
    in SQL, so router workers read each model's accuracy posterior and mean cost per chunk
    without scanning feedback or responses.
    """

    __tablename__ = "model_stats"

    model_id: Mapped[int] = mapped_column(ForeignKey("zoo_models.id"), primary_key=True)
    successes: Mapped[Counter]
    trials: Mapped[Counter]
    cost_total: Mapped[float] = mapped_column(default=0.0)
    cost_count: Mapped[Counter]


class DeadLetter(Base):
    """A message no worker could process, kept for a human to inspect."""

    __tablename__ = "dead_letters"

    id: Mapped[BigIdPk]
    queue: Mapped[str] = mapped_column(String(200))
    payload: Mapped[LongText]
    reason: Mapped[LongText]
    created_at: Mapped[CreatedAt]


class ApiKey(Base):
    """A tenant's API key, stored only as the SHA-256 of the secret.

    Keys are 32 random bytes, so a fast hash is enough (nobody can guess a preimage) and
    lets every request find its key with one indexed lookup. `prefix` is the start of the
    key, shown by `messplus tenants keys list` so an operator can tell keys apart.
    """

    __tablename__ = "api_keys"

    id: Mapped[IntPk]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[CreatedAt]
    revoked_at: Mapped[dt.datetime | None]


class ApiFile(Base):
    """A JSON-lines file a tenant uploaded (checked whole on upload); content in parts."""

    __tablename__ = "api_files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[int]
    created_at: Mapped[CreatedAt]


class ApiFilePart(Base):
    """One piece of a file's bytes, so neither upload nor download holds a whole file."""

    __tablename__ = "api_file_parts"

    file_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("api_files.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes]


class Batch(Base):
    """What the HTTP API adds to a job made from an uploaded file: its OpenAI batch fields.

    The job (and its requests) carries the work and its progress; a batch's status is read
    from them, so nothing here changes while the batch runs, except a cancellation.
    """

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_tenant_id_created_at", "tenant_id", "created_at"),)

    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id"), primary_key=True)
    tenant_id: Mapped[TenantFk]
    input_file_id: Mapped[str] = mapped_column(String(40))
    endpoint: Mapped[str] = mapped_column(String(32))
    completion_window: Mapped[str] = mapped_column(String(8))
    metadata_json: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[CreatedAt]
    cancelling_at: Mapped[dt.datetime | None]
