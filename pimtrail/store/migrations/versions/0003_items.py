"""Raw receipts per element: `item_pack` and per-dataset listings (`receipt_list`).

Existing receipts become listings whose pages keep their whole-body blobs (layout null), so the
snapshots stored before keep their content hashes and verify as before.

Revision ID: 0003
Revises: 0002
"""

import hashlib
import json
import zlib
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipt_list",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshot.id"), nullable=False),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
    op.create_index("ix_receipt_list_snapshot_id", "receipt_list", ["snapshot_id"])
    op.create_table(
        "item_pack",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("first_n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("digests", sa.LargeBinary, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    conn = op.get_bind()
    lists: dict[tuple[str, int, str], list[dict]] = defaultdict(list)
    for tenant, snapshot_id, dataset, page, parent, request, sha in conn.execute(sa.text(
            "SELECT tenant_id, snapshot_id, dataset, page, parent, request, sha256 FROM receipt ORDER BY id")):
        lists[(tenant, snapshot_id, dataset)].append(
            {"page": page, "parent": parent, "request": request, "sha256": sha, "layout": None})
    blobs, rows = {}, []
    for (tenant, snapshot_id, dataset), pages in lists.items():
        text = json.dumps({"pages": pages}, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        sha = hashlib.sha256(text).hexdigest()
        blobs[(tenant, sha)] = text
        rows.append({"tenant_id": tenant, "snapshot_id": snapshot_id, "dataset": dataset, "sha256": sha})
    known = {(t, s) for t, s in conn.execute(sa.text("SELECT tenant_id, sha256 FROM blob"))}
    new = [{"tenant_id": t, "sha256": s, "size": len(d), "data": zlib.compress(d, 1)}
           for (t, s), d in blobs.items() if (t, s) not in known]
    if new:
        conn.execute(sa.text("INSERT INTO blob (tenant_id, sha256, size, data) VALUES (:tenant_id, :sha256, :size, :data)"), new)
    if rows:
        conn.execute(sa.text("INSERT INTO receipt_list (tenant_id, snapshot_id, dataset, sha256) "
                             "VALUES (:tenant_id, :snapshot_id, :dataset, :sha256)"), rows)
    op.drop_table("receipt")


def downgrade() -> None:
    raise NotImplementedError("receipts per element cannot be turned back into per-page rows here")
