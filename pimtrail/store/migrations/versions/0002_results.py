"""Control results per snapshot, so control posture has a history too.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_run",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshot.id"), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("evaluated_at", sa.DateTime, nullable=False),
        sa.Column("period_from", sa.DateTime, nullable=False),
        sa.Column("period_to", sa.DateTime, nullable=False),
        sa.Column("tool_version", sa.String(32), nullable=False),
        sa.Column("settings_hash", sa.String(64), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )
    op.create_index("ix_check_run_snapshot", "check_run", ["tenant_id", "snapshot_id"])
    op.create_table(
        "control_result",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("check_run.id"), nullable=False),
        sa.Column("control_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("finding_count", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_control_result_run", "control_result", ["run_id"])


def downgrade() -> None:
    op.drop_table("control_result")
    op.drop_table("check_run")
