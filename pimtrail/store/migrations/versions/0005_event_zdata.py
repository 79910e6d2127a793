"""Event data compressed: `event.data` (canonical JSON text) becomes `event.zdata`, a zstd frame made with
a dictionary trained per tenant from its stored events (table `event_dict`); the unread hex `digest`
column goes (`verify` always hashed the text itself). See `pimtrail.store.eventdata`.

Nothing that is hashed changes: the text decompressed is the text stored before, so every snapshot's
content hash and the chain verify as before. On SQLite the table is rebuilt (Alembic's batch mode), so
its indexes are built anew; the file keeps its freed pages for later growth (`VACUUM`, or `pimtrail db
copy` into a new file, gives them back).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 5000
SAMPLE_ROWS = 50_000  # stored events a tenant's dictionary is trained from at most (its first ones)

_event = sa.table("event", sa.column("id", sa.Integer), sa.column("tenant_id", sa.String),
                  sa.column("data", sa.Text), sa.column("digest", sa.String), sa.column("zdata", sa.LargeBinary))


def _batches(conn, *columns):
    """(id, ...) rows of the event table a batch at a time, in id order."""
    after = 0
    while True:
        rows = conn.execute(sa.select(_event.c.id, *columns).where(_event.c.id > after)
                            .order_by(_event.c.id).limit(BATCH)).all()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def upgrade() -> None:
    from pimtrail.store.eventdata import DICT_MIN, Codec, train

    op.create_table(
        "event_dict",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("dict_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.add_column("event", sa.Column("zdata", sa.LargeBinary, nullable=True))
    conn = op.get_bind()
    dicts = sa.table("event_dict", sa.column("tenant_id", sa.String), sa.column("dict_id", sa.BigInteger),
                     sa.column("data", sa.LargeBinary))
    codecs = {}
    for tenant in conn.execute(sa.select(_event.c.tenant_id).distinct()).scalars().all():
        texts = conn.execute(sa.select(_event.c.data).where(_event.c.tenant_id == tenant)
                             .order_by(_event.c.id).limit(SAMPLE_ROWS)).scalars().all()
        trained = train(texts) if len(texts) >= DICT_MIN else None
        if trained is not None:
            conn.execute(dicts.insert().values(tenant_id=tenant, dict_id=trained[0], data=trained[1]))
        codecs[tenant] = Codec({trained[0]: trained[1]} if trained else {})
    update = sa.update(_event).where(_event.c.id == sa.bindparam("event_id")).values(zdata=sa.bindparam("z"))
    for rows in _batches(conn, _event.c.tenant_id, _event.c.data):
        conn.execute(update, [{"event_id": i, "z": codecs[tenant].compress(data)} for i, tenant, data in rows])
    with op.batch_alter_table("event") as batch:
        batch.drop_column("data")
        batch.drop_column("digest")
        batch.alter_column("zdata", existing_type=sa.LargeBinary, nullable=False)


def downgrade() -> None:
    from pimtrail.store import hashing
    from pimtrail.store.eventdata import Codec

    op.add_column("event", sa.Column("digest", sa.String(64), nullable=True))
    op.add_column("event", sa.Column("data", sa.Text, nullable=True))
    conn = op.get_bind()
    codecs = {}
    update = sa.update(_event).where(_event.c.id == sa.bindparam("event_id")).values(
        data=sa.bindparam("text"), digest=sa.bindparam("hash"))
    for rows in _batches(conn, _event.c.tenant_id, _event.c.zdata):
        out = []
        for i, tenant, zdata in rows:
            if tenant not in codecs:
                codecs[tenant] = Codec.load(conn, tenant)
            text = codecs[tenant].decompress(zdata)
            out.append({"event_id": i, "text": text, "hash": hashing.text_digest(text)})
        conn.execute(update, out)
    with op.batch_alter_table("event") as batch:
        batch.drop_column("zdata")
        batch.alter_column("digest", existing_type=sa.String(64), nullable=False)
        batch.alter_column("data", existing_type=sa.Text, nullable=False)
    op.drop_table("event_dict")
