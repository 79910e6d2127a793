"""Events past the tenant's audit window kept as one batch per kind and day: table `event_archive`
(`pimtrail.store.event_archive`). The next ingest of each tenant moves the rows of the days before its horizon
there; nothing that is hashed changes (a batch keeps each event's stored text and first_seen).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_archive",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(128), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    # the archived events go back to `event` as the rows they were, a batch at a time, each text compressed
    # with the tenant's codec as an ingest writes it; then the table goes
    from pimtrail.store.event_archive import unpack
    from pimtrail.store.eventdata import Codec

    conn = op.get_bind()
    columns = ("tenant_id", "kind", "source_id", "occurred_at", "principal_id", "role_id", "correlation_id",
               "zdata", "first_seen")
    event = sa.table("event", *(sa.column(c) for c in columns[:3]), sa.column("occurred_at", sa.DateTime),
                     *(sa.column(c) for c in columns[4:]))
    archive = sa.table("event_archive", *(sa.column(c) for c in ("tenant_id", "kind", "day", "data")))
    codecs: dict[str, Codec] = {}
    for tenant, kind, day in conn.execute(sa.select(archive.c.tenant_id, archive.c.kind, archive.c.day)).all():
        codec = codecs.get(tenant) or codecs.setdefault(tenant, Codec.load(conn, tenant))
        data = conn.execute(sa.select(archive.c.data).where(
            archive.c.tenant_id == tenant, archive.c.kind == kind, archive.c.day == day)).scalar_one()
        rows = [{"tenant_id": tenant, "kind": kind, "source_id": e.source_id, "occurred_at": e.occurred_at,
                 "principal_id": e.principal_id, "role_id": e.role_id, "correlation_id": e.correlation_id,
                 "zdata": codec.compress(e.text), "first_seen": e.first_seen} for e in unpack(kind, day, data)]
        if rows:
            conn.execute(event.insert(), rows)
    op.drop_table("event_archive")
