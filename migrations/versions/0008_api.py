"""The tenants' HTTP front door: API keys, uploaded files, batches, and what requests need
to travel as OpenAI-style calls (custom ids, sampling parameters, chat templates, finish
reasons and token counts).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 10:00:00

Every new column is nullable and the new tables are empty, so an upgrade never rewrites
the requests or responses already stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"])
    op.create_table(
        "api_files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_files_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_files")),
    )
    op.create_index(op.f("ix_api_files_tenant_id"), "api_files", ["tenant_id"])
    op.create_table(
        "api_file_parts",
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["api_files.id"],
            name=op.f("fk_api_file_parts_file_id_api_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("file_id", "part", name=op.f("pk_api_file_parts")),
    )
    op.create_table(
        "batches",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("input_file_id", sa.String(length=40), nullable=False),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("completion_window", sa.String(length=8), nullable=False),
        sa.Column("metadata_json", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelling_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_batches_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_batches_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_batches")),
    )
    op.create_index("ix_batches_tenant_id_created_at", "batches", ["tenant_id", "created_at"])
    # Plain ALTER TABLE ADD/DROP COLUMN, on SQLite too (3.35+): a batch operation would
    # recreate these tables, and SQLite refuses to drop a table others reference.
    op.add_column("requests", sa.Column("custom_id", sa.String(length=512), nullable=True))
    op.add_column("requests", sa.Column("params", sa.JSON(), nullable=True))
    op.create_index(
        "uq_requests_job_id_custom_id", "requests", ["job_id", "custom_id"], unique=True
    )
    op.add_column("responses", sa.Column("finish_reason", sa.String(length=16), nullable=True))
    op.add_column("responses", sa.Column("prompt_tokens", sa.Integer(), nullable=True))
    op.add_column("zoo_models", sa.Column("chat_template", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("zoo_models", "chat_template")
    op.drop_column("responses", "prompt_tokens")
    op.drop_column("responses", "finish_reason")
    op.drop_index("uq_requests_job_id_custom_id", table_name="requests")
    op.drop_column("requests", "params")
    op.drop_column("requests", "custom_id")
    op.drop_index("ix_batches_tenant_id_created_at", table_name="batches")
    op.drop_table("batches")
    op.drop_table("api_file_parts")
    op.drop_index(op.f("ix_api_files_tenant_id"), table_name="api_files")
    op.drop_table("api_files")
    op.drop_index(op.f("ix_api_keys_tenant_id"), table_name="api_keys")
    op.drop_table("api_keys")
