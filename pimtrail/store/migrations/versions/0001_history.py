"""The first history schema: snapshots, coverage, receipts, versioned facts, events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

T, N, K, H = 64, 128, 400, 64


def upgrade() -> None:
    op.create_table(
        "snapshot",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(T), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("collected_at", sa.DateTime, nullable=False),
        sa.Column("ingested_at", sa.DateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_ref", sa.String(K), nullable=False),
        sa.Column("tool_version", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fact_count", sa.Integer, nullable=False),
        sa.Column("event_count", sa.Integer, nullable=False),
        sa.Column("state_digest", sa.String(H), nullable=False),
        sa.Column("content_hash", sa.String(H), nullable=False),
        sa.Column("prev_hash", sa.String(H), nullable=False),
        sa.Column("chain_hash", sa.String(H), nullable=False),
        sa.UniqueConstraint("tenant_id", "seq", name="uq_snapshot_tenant_seq"),
    )
    op.create_index("ix_snapshot_tenant_id", "snapshot", ["tenant_id"])
    op.create_table(
        "coverage",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(T), nullable=False),
        sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshot.id"), nullable=False),
        sa.Column("dataset", sa.String(N), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("optional", sa.Boolean, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("query", sa.String(2000), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("error_code", sa.String(N), nullable=True),
        sa.Column("error_message", sa.String(2000), nullable=True),
        sa.Column("window_from", sa.DateTime, nullable=True),
        sa.Column("window_to", sa.DateTime, nullable=True),
    )
    op.create_index("ix_coverage_snapshot_id", "coverage", ["snapshot_id"])
    op.create_table(
        "blob",
        sa.Column("tenant_id", sa.String(T), primary_key=True),
        sa.Column("sha256", sa.String(H), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "receipt",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(T), nullable=False),
        sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshot.id"), nullable=False),
        sa.Column("dataset", sa.String(N), nullable=False),
        sa.Column("page", sa.Integer, nullable=False),
        sa.Column("parent", sa.String(K), nullable=False),
        sa.Column("request", sa.String(2000), nullable=False),
        sa.Column("sha256", sa.String(H), nullable=False),
    )
    op.create_index("ix_receipt_snapshot_id", "receipt", ["snapshot_id"])
    op.create_table(
        "fact",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(T), nullable=False),
        sa.Column("kind", sa.String(N), nullable=False),
        sa.Column("key", sa.String(K), nullable=False),
        sa.Column("principal_id", sa.String(T), nullable=True),
        sa.Column("role_id", sa.String(T), nullable=True),
        sa.Column("group_id", sa.String(T), nullable=True),
        sa.Column("digest", sa.String(H), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("valid_from", sa.Integer, nullable=False),
        sa.Column("valid_to", sa.Integer, nullable=True),
    )
    op.create_index("ix_fact_open", "fact", ["tenant_id", "kind", "valid_to"])
    op.create_index("ix_fact_key", "fact", ["tenant_id", "kind", "key"])
    op.create_index("ix_fact_principal", "fact", ["tenant_id", "principal_id"])
    op.create_table(
        "event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(T), nullable=False),
        sa.Column("kind", sa.String(N), nullable=False),
        sa.Column("source_id", sa.String(K), nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("principal_id", sa.String(T), nullable=True),
        sa.Column("role_id", sa.String(T), nullable=True),
        sa.Column("correlation_id", sa.String(T), nullable=True),
        sa.Column("digest", sa.String(H), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Integer, nullable=False),
        sa.UniqueConstraint("tenant_id", "kind", "source_id", name="uq_event_source"),
    )
    op.create_index("ix_event_time", "event", ["tenant_id", "kind", "occurred_at"])


def downgrade() -> None:
    for table in ("event", "fact", "receipt", "blob", "coverage", "snapshot"):
        op.drop_table(table)
