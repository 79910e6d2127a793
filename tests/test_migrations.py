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
    assert {"snapshot", "coverage", "blob", "receipt", "fact", "event"} <= tables
    assert revision == "0002"


def test_every_table_carries_the_tenant(db):
    for table in metadata.sorted_tables:
        assert "tenant_id" in table.c, table.name


def test_reopening_is_idempotent_and_uses_wal(db):
    HistoryStore.open(db, create=True).close()
    with HistoryStore.open(db) as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
