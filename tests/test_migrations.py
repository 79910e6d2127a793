"""The Alembic migrations build exactly the schema the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from pimtrail.store import HistoryStore
from pimtrail.store.schema import metadata


def test_migrated_schema_matches_the_models(db_url):
    with HistoryStore.open(db_url, create=True) as store:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            tables = set(inspect(conn).get_table_names())
            revision = MigrationContext.configure(conn).get_current_revision()
    assert diff == []
    assert {"snapshot", "coverage", "blob", "receipt_list", "item_pack", "fact", "event"} <= tables
    assert "receipt" not in tables
    assert revision == "0003"


def test_a_history_from_before_0003_keeps_its_receipts_and_verifies(db_url):
    """A history written with per-page receipts (revision 0002) is upgraded in place: its pages
    stay whole blobs in listings, the chain still verifies, and new snapshots continue it."""
    import zlib
    from datetime import datetime
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    import pimtrail.store.engine as store_engine
    from pimtrail.store import hashing
    from pimtrail.store.ingest import content_hash

    engine = create_engine(store_engine.resolve_url(db_url))
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_engine.__file__).parent / "migrations"))
    tenant, body = "t1", b'{"value":[{"id":"u1"}]}'
    sha = hashing.sha256_hex(body)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        row = {"tenant_id": tenant, "seq": 1, "collected_at": datetime(2026, 7, 1, 6), "source": "export",
               "source_ref": "old", "tool_version": "0.1", "status": "complete", "fact_count": 0,
               "event_count": 0, "state_digest": hashing.GENESIS}
        receipt = {"dataset": "users", "page": 0, "parent": "", "request": "/v1.0/users", "sha256": sha}
        row["content_hash"] = content_hash(row, [], [receipt], hashing.events_digest([]))
        row["prev_hash"], row["chain_hash"] = hashing.GENESIS, hashing.chain(hashing.GENESIS, row["content_hash"])
        conn.execute(text("INSERT INTO snapshot (id, tenant_id, seq, collected_at, ingested_at, source, source_ref, "
                          "tool_version, status, fact_count, event_count, state_digest, content_hash, prev_hash, "
                          "chain_hash) VALUES (1, :tenant_id, :seq, :collected_at, :collected_at, :source, "
                          ":source_ref, :tool_version, :status, :fact_count, :event_count, :state_digest, "
                          ":content_hash, :prev_hash, :chain_hash)"), row)
        conn.execute(text("INSERT INTO blob (tenant_id, sha256, size, data) VALUES (:t, :s, :n, :d)"),
                     {"t": tenant, "s": sha, "n": len(body), "d": zlib.compress(body)})
        conn.execute(text("INSERT INTO receipt (tenant_id, snapshot_id, dataset, page, parent, request, sha256) "
                          "VALUES (:t, 1, 'users', 0, '', '/v1.0/users', :s)"), {"t": tenant, "s": sha})
    engine.dispose()
    with HistoryStore.open(db_url, create=True) as store:  # migrates to the newest revision
        report = store.verify()
        assert report.ok, report.first_broken
        assert store.receipt(tenant, sha) == body
        assert [r["sha256"] for r in store.receipts(tenant, 1)] == [sha]


def test_every_table_carries_the_tenant(db):
    for table in metadata.sorted_tables:
        assert "tenant_id" in table.c, table.name


def test_reopening_is_idempotent_and_uses_wal(db):
    HistoryStore.open(db, create=True).close()
    with HistoryStore.open(db) as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
