"""Activations joined at ingest: `activation.joined`, each activation as `join_activations` makes it of all its
stored audit events (`pimtrail.store.joined`), so that a view reads a month's ~20,000 activations instead of
decompressing and decoding their ~43,000 events. Here joined from the events stored before, afterwards at
each ingest for the activations its new events belong to. Nothing that is hashed changes; `verify` joins
the events again and compares.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    from pimtrail.store import joined
    from pimtrail.store.eventdata import Codec

    op.add_column("activation", sa.Column("joined", sa.LargeBinary, nullable=True))
    conn = op.get_bind()
    activation = sa.table("activation", sa.column("tenant_id", sa.String), sa.column("correlation_id", sa.String),
                          sa.column("joined", sa.LargeBinary))
    update = sa.update(activation).where(activation.c.tenant_id == sa.bindparam("tenant"),
                                         activation.c.correlation_id == sa.bindparam("correlation")
                                         ).values(joined=sa.bindparam("z"))
    for tenant in conn.execute(sa.select(activation.c.tenant_id).distinct()).scalars().all():
        codec = Codec.load(conn, tenant)
        rows = [{"tenant": tenant, "correlation": c, "z": codec.compress(joined.encode(act))}
                for c, act in joined.join_all(conn, tenant, codec.decompress, archive="none").items()]
        for start in range(0, len(rows), BATCH):
            conn.execute(update, rows[start:start + BATCH])


def downgrade() -> None:
    with op.batch_alter_table("activation") as batch:
        batch.drop_column("joined")
