"""Ratings keep the order they were given in, and wait in Postgres until applied.

feedback.rated_at and feedback.rating_seq hold the order of the rating that set each value,
so an older rating delivered late never replaces a newer one; ratings stored before are
ordered by when they last changed. pending_ratings is the outbox between submitting and
the feedback workers (db.models.PendingRating).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH = "'1970-01-01 00:00:00+00:00'"


def upgrade() -> None:
    # SQLite adds a NOT NULL column only with a constant default; the rows get their own
    # value right after.
    op.add_column(
        "feedback",
        sa.Column(
            "rated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text(EPOCH)
        ),
    )
    op.add_column(
        "feedback", sa.Column("rating_seq", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.execute("UPDATE feedback SET rated_at = updated_at")
    op.create_table(
        "pending_ratings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("satisfied", sa.Boolean(), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_pending_ratings_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_pending_ratings_request_id_requests")
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["zoo_models.id"], name=op.f("fk_pending_ratings_model_id_zoo_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_ratings")),
    )
    op.create_index("ix_pending_ratings_updated_at", "pending_ratings", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_ratings_updated_at", table_name="pending_ratings")
    op.drop_table("pending_ratings")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("rating_seq")
        batch.drop_column("rated_at")
