"""Initial schema: tenants, zoo, jobs and requests, routing, answers, feedback, SLA state.

Timestamps are DateTime(timezone=True) here; db.models.UtcDateTime adds UTC handling on top
in Python and needs nothing in the database.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 01:13:06.931535
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_table(
        "predictor_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictor_versions")),
    )
    op.create_index(
        "uq_predictor_versions_active",
        "predictor_versions",
        ["active"],
        unique=True,
        postgresql_where=sa.text("active"),
        sqlite_where=sa.text("active"),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("alpha", sa.Double(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "alpha > 0 AND alpha < 1", name=op.f("ck_tenants_alpha_in_unit_interval")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    op.create_table(
        "zoo_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("triton_model_name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("cost_per_request", sa.Double(), nullable=False),
        sa.Column("cost_per_token", sa.Double(), nullable=False),
        sa.Column("cost_unit", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zoo_models")),
        sa.UniqueConstraint("name", name=op.f("uq_zoo_models_name")),
        sa.UniqueConstraint("position", name=op.f("uq_zoo_models_position")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("n_requests", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_jobs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_table(
        "sla_states",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("virtual_queue", sa.Double(), nullable=False),
        sa.Column("tracked_queue", sa.Double(), nullable=False),
        sa.Column("request_counter", sa.BigInteger(), nullable=False),
        sa.Column("rated_count", sa.BigInteger(), nullable=False),
        sa.Column("satisfied_count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "virtual_queue >= 0 AND tracked_queue >= 0",
            name=op.f("ck_sla_states_queues_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_sla_states_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_sla_states")),
    )
    op.create_table(
        "requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("served_model_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'routed', 'done', 'failed')", name=op.f("ck_requests_status")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_requests_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["served_model_id"],
            ["zoo_models.id"],
            name=op.f("fk_requests_served_model_id_zoo_models"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_requests_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests")),
    )
    op.create_index(
        "ix_requests_status_updated_at", "requests", ["status", "updated_at"], unique=False
    )
    op.create_index("uq_requests_job_id_seq", "requests", ["job_id", "seq"], unique=True)
    op.create_table(
        "feedback",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("satisfied", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["zoo_models.id"], name=op.f("fk_feedback_model_id_zoo_models")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_feedback_request_id_requests")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_feedback_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("request_id", "model_id", name=op.f("uq_feedback_request_id_model_id")),
    )
    op.create_index(op.f("ix_feedback_tenant_id"), "feedback", ["tenant_id"], unique=False)
    op.create_table(
        "responses",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("latency_s", sa.Double(), nullable=False),
        sa.Column("cost", sa.Double(), nullable=False),
        sa.Column("would_satisfy", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["zoo_models.id"], name=op.f("fk_responses_model_id_zoo_models")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_responses_request_id_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
        sa.UniqueConstraint(
            "request_id", "model_id", name=op.f("uq_responses_request_id_model_id")
        ),
    )
    op.create_table(
        "routing_decisions",
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("t", sa.BigInteger(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("virtual_queue", sa.Double(), nullable=False),
        sa.Column("explored", sa.Boolean(), nullable=False),
        sa.Column("chosen_model_id", sa.Integer(), nullable=False),
        sa.Column("predictor_version_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chosen_model_id"],
            ["zoo_models.id"],
            name=op.f("fk_routing_decisions_chosen_model_id_zoo_models"),
        ),
        sa.ForeignKeyConstraint(
            ["predictor_version_id"],
            ["predictor_versions.id"],
            name=op.f("fk_routing_decisions_predictor_version_id_predictor_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_routing_decisions_request_id_requests")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_routing_decisions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_routing_decisions")),
    )


def downgrade() -> None:
    op.drop_table("routing_decisions")
    op.drop_table("responses")
    op.drop_index(op.f("ix_feedback_tenant_id"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("uq_requests_job_id_seq", table_name="requests")
    op.drop_index("ix_requests_status_updated_at", table_name="requests")
    op.drop_table("requests")
    op.drop_table("sla_states")
    op.drop_table("jobs")
    op.drop_table("zoo_models")
    op.drop_table("tenants")
    op.drop_index(
        "uq_predictor_versions_active",
        table_name="predictor_versions",
        postgresql_where=sa.text("active"),
        sqlite_where=sa.text("active"),
    )
    op.drop_table("predictor_versions")
    op.drop_table("dead_letters")
