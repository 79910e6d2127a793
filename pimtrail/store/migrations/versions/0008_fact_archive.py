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
    # the archived versions go back to `fact` as the closed rows they were (a batch at a time), then the table
    # goes. Decoded here as `pimtrail.store.archive` stores them: zstd of a JSON array of records.
    import json

    import zstandard

    conn = op.get_bind()
    record = ("id", "key", "principal_id", "role_id", "group_id", "digest", "data", "valid_from", "element_n")
    fact = sa.table("fact", *(sa.column(c) for c in ("tenant_id", "kind", *record[1:], "valid_to")))
    archive = sa.table("fact_archive", *(sa.column(c) for c in ("tenant_id", "kind", "valid_to", "data")))
    for tenant, kind, valid_to in conn.execute(sa.select(archive.c.tenant_id, archive.c.kind, archive.c.valid_to)
                                               ).all():
        data = conn.execute(sa.select(archive.c.data).where(
            archive.c.tenant_id == tenant, archive.c.kind == kind, archive.c.valid_to == valid_to)).scalar_one()
        rows = [dict(zip(record, values), tenant_id=tenant, kind=kind, valid_to=valid_to)
                for values in json.loads(zstandard.ZstdDecompressor().decompress(bytes(data)))]
        for row in rows:  # a changed fact's row kept its id for its new version: the old one gets another
            del row["id"]
        if rows:
            conn.execute(fact.insert(), rows)
    op.drop_table("fact_archive")
