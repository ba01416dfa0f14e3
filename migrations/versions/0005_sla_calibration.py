"""SLA calibration: per tenant and model, the sums behind the estimate of unrated answers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 04:30:00

Decisions already stored get their served model's predicted satisfaction back from the
expected debt they recorded (alpha at the time minus the prediction; the tenant's current
alpha stands in), and the calibration table is filled from them and the ratings already
given, so a deployment that upgrades mid-stream keeps counting its unrated answers.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL_PREDICTIONS = """
UPDATE routing_decisions SET predicted_satisfaction = (
    SELECT tenants.alpha FROM tenants WHERE tenants.id = routing_decisions.tenant_id
) - expected_debt
"""

# One row per (tenant, served model): unrated answers with their predictions, rated ones
# with the sums of their residuals against the prediction; failed requests are left out.
_BACKFILL_CALIBRATION = """
INSERT INTO sla_calibration
    (tenant_id, model_id, unrated, unrated_predicted, rated, residual, residual_squared)
SELECT d.tenant_id, d.chosen_model_id,
    SUM(CASE WHEN f.id IS NULL THEN 1 ELSE 0 END),
    SUM(CASE WHEN f.id IS NULL THEN d.predicted_satisfaction ELSE 0 END),
    SUM(CASE WHEN f.id IS NULL THEN 0 ELSE 1 END),
    SUM(CASE WHEN f.id IS NULL THEN 0
        ELSE (CASE WHEN f.satisfied THEN 1 ELSE 0 END) - d.predicted_satisfaction END),
    SUM(CASE WHEN f.id IS NULL THEN 0
        ELSE ((CASE WHEN f.satisfied THEN 1 ELSE 0 END) - d.predicted_satisfaction)
           * ((CASE WHEN f.satisfied THEN 1 ELSE 0 END) - d.predicted_satisfaction) END)
FROM routing_decisions d
JOIN requests r ON r.id = d.request_id AND r.status <> 'failed'
LEFT JOIN feedback f ON f.request_id = d.request_id AND f.model_id = d.chosen_model_id
GROUP BY d.tenant_id, d.chosen_model_id
"""


def upgrade() -> None:
    with op.batch_alter_table("routing_decisions") as batch:
        batch.add_column(
            sa.Column("predicted_satisfaction", sa.Double(), nullable=False, server_default="0")
        )
    op.create_table(
        "sla_calibration",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("unrated", sa.BigInteger(), nullable=False),
        sa.Column("unrated_predicted", sa.Double(), nullable=False),
        sa.Column("rated", sa.BigInteger(), nullable=False),
        sa.Column("residual", sa.Double(), nullable=False),
        sa.Column("residual_squared", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_sla_calibration_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["zoo_models.id"], name=op.f("fk_sla_calibration_model_id_zoo_models")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "model_id", name=op.f("pk_sla_calibration")),
    )
    op.execute(_BACKFILL_PREDICTIONS)
    op.execute(_BACKFILL_CALIBRATION)


def downgrade() -> None:
    op.drop_table("sla_calibration")
    with op.batch_alter_table("routing_decisions") as batch:
        batch.drop_column("predicted_satisfaction")
