"""Routing decisions: the expected SLA debt each decision added until its rating arrives.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 01:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("routing_decisions") as batch:
        batch.add_column(
            sa.Column("expected_debt", sa.Double(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("routing_decisions") as batch:
        batch.drop_column("expected_debt")
