"""Indexes for reading a tenant's recent requests and ratings (report --since, sla --since).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 04:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_requests_tenant_id_created_at", "requests", ["tenant_id", "created_at"])
    op.create_index("ix_feedback_tenant_id_received_at", "feedback", ["tenant_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_tenant_id_received_at", table_name="feedback")
    op.drop_index("ix_requests_tenant_id_created_at", table_name="requests")
