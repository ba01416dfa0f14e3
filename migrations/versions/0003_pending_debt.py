"""SLA state: the expected debt of routed requests whose rating has not arrived.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sla_states") as batch:
        batch.add_column(sa.Column("pending_debt", sa.Double(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("sla_states") as batch:
        batch.drop_column("pending_debt")
