"""SLA state: the integral shift the router adds to the virtual queue when it decides
(router.messplus.advance_shift).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:00:00

Tenants that exist start with no shift, as a new tenant does; the router integrates it
from their next chunk on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sla_states") as batch:
        batch.add_column(sa.Column("queue_shift", sa.Double(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("sla_states") as batch:
        batch.drop_column("queue_shift")
