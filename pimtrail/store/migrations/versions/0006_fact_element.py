"""Facts name the raw element they were normalised from: `fact.element_n`, the element's number in
`item_pack` (null for facts normalised from several elements or from none, and for facts written
before this revision until an ingest sees their element again).

A daily export whose elements the previous snapshot already held is then read without parsing
them: their facts are the open facts naming them (`pimtrail.store.known`, docs/architecture.md
"Reading what did not change"). `snapshot.element_links` says a snapshot was written so (false for
those before: the first snapshot written after this revision names every element again). Nothing
that is hashed changes.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("fact", sa.Column("element_n", sa.BigInteger(), nullable=True))
    op.add_column("snapshot", sa.Column("element_links", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("fact") as batch:
        batch.drop_column("element_n")
    with op.batch_alter_table("snapshot") as batch:
        batch.drop_column("element_links")
