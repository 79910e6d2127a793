"""`ix_fact_principal` holds only the facts whose principal is not their key (`principal_id <> key`). A
principal's fact, its registration's and its sign-in activity's are keyed by the principal's id: ~200,000 of a
large tenant's ~258,000 facts, which a reader by principal now finds by their key through `ix_fact_key`
(`HistoryStore.principal_facts`, `HistoryStore._filtered`: the two conditions together are exactly
`principal_id IN (...)`). The index had an entry for each of them, in random order: ~0.45 s of a large first
snapshot's insert and ~20 MB of its file. Nothing that is hashed changes.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_WHERE = "principal_id <> key"  # as `schema.PRINCIPAL_NOT_KEY`, as it was when this was written


def upgrade() -> None:
    op.drop_index("ix_fact_principal", table_name="fact")
    op.create_index("ix_fact_principal", "fact", ["tenant_id", "principal_id", "kind"],
                    sqlite_where=sa.text(_WHERE), postgresql_where=sa.text(_WHERE))


def downgrade() -> None:
    op.drop_index("ix_fact_principal", table_name="fact")
    op.create_index("ix_fact_principal", "fact", ["tenant_id", "principal_id", "kind"])
