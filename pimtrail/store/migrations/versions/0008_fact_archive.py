"""Closed fact versions kept compressed apart from the open ones: table `fact_archive`
(`pimtrail.store.archive`). From now on an ingest moves each version it closes there and writes a changed
fact's new version into its old row. Closed rows written before stay in `fact`: every reader reads both, so
nothing is moved here and nothing that is hashed changes.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fact_archive",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(128), primary_key=True),
        sa.Column("valid_to", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    # the archived versions go back to `fact` as the closed rows they were, then the table goes
    from pimtrail.store import archive

    conn = op.get_bind()
    fact = sa.table("fact", *(sa.column(c) for c in ("id", "tenant_id", "kind", "key", "principal_id", "role_id",
                                                      "group_id", "digest", "data", "valid_from", "valid_to",
                                                      "element_n")))
    tenants = conn.execute(sa.text("SELECT DISTINCT tenant_id FROM fact_archive")).scalars().all()
    for tenant in tenants:
        rows = [dict(v._asdict(), tenant_id=tenant) for v in archive.versions(conn, tenant)]
        for row in rows:  # a changed fact's row kept its id for its new version: the old one gets another
            del row["id"]
        for start in range(0, len(rows), 5000):
            conn.execute(fact.insert(), rows[start:start + 5000])
    op.drop_table("fact_archive")
