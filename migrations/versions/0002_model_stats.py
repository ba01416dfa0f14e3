"""Per-model running statistics (ratings and charged cost) for the router's fast layer.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_stats",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("successes", sa.BigInteger(), nullable=False),
        sa.Column("trials", sa.BigInteger(), nullable=False),
        sa.Column("cost_total", sa.Double(), nullable=False),
        sa.Column("cost_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["zoo_models.id"], name=op.f("fk_model_stats_model_id_zoo_models")
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_model_stats")),
    )


def downgrade() -> None:
    op.drop_table("model_stats")
