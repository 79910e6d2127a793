"""`pimtrail db copy`: a whole history moves into an empty database, row for row, and verifies there."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pimtrail.collectors.exportdir import read_export
from pimtrail.store import HistoryStore
from pimtrail.store.engine import open_engine
from pimtrail.store.schema import metadata
from test_store_backends import TENANTS, tenant_exports


def dump(db: str) -> dict[str, list[tuple]]:
    """Every row of every table, sorted in Python (the backends' string collations differ)."""
    engine = open_engine(db, create=False)
    try:
        with engine.connect() as conn:
            return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in metadata.sorted_tables}
    finally:
        engine.dispose()


@pytest.fixture
def source(tmp_path, export, cli) -> str:
    """A SQLite history of two tenants, three weeks each, with stored check results."""
    db = str(tmp_path / "source.db")
    with HistoryStore.open(db, create=True) as store:
        for tenant in TENANTS[:2]:
            for path in tenant_exports(export, tenant, 3):
                store.ingest(read_export(path))
    assert cli("check", "--db", db, "--tenant", TENANTS[0], "--fail-on", "never").exit_code == 0
    return db


def test_copy_keeps_every_row_and_verifies(source, db_url, cli, export):
    result = cli("db", "copy", "--db", source, "--to", db_url)
    assert result.exit_code == 0, result.output
    assert "verified on the target: 6 snapshot(s) of 2 tenant(s)" in result.output
    for table in ("snapshot", "coverage", "blob", "receipt_list", "item_pack", "fact", "event", "check_run",
                  "control_result"):
        assert f"  {table} " in result.output, table
    assert dump(db_url) == dump(source)  # ids, timestamps, bytes, JSON text: all as they were
    assert cli("verify", "--db", db_url).exit_code == 0
    # the target carries on where the source stopped: new ids follow the copied ones
    with HistoryStore.open(db_url) as store:
        newest = max(s.id for s in store.snapshots())
        added = store.ingest(read_export(tenant_exports(export, TENANTS[0], 4)[-1]))
        assert (added.seq, added.id) == (4, newest + 1)
        assert store.verify().ok


def test_copy_refuses_a_target_that_holds_data(source, db_url, cli):
    assert cli("db", "copy", "--db", source, "--to", db_url).exit_code == 0
    before = dump(db_url)
    again = cli("db", "copy", "--db", source, "--to", db_url)
    assert again.exit_code == 2
    assert "already holds data" in again.output and "empty database" in again.output
    assert dump(db_url) == before


def test_copy_to_itself_is_refused(source, cli):
    result = cli("db", "copy", "--db", source, "--to", source)
    assert result.exit_code == 2 and "same database" in result.output


def test_round_trip_through_postgresql(source, pg_url, tmp_path, cli):
    """SQLite -> PostgreSQL -> SQLite gives back the same rows: PostgreSQL works as a source too."""
    back = str(tmp_path / "back.db")
    assert cli("db", "copy", "--db", source, "--to", pg_url).exit_code == 0
    result = cli("db", "copy", "--db", pg_url, "--to", back)
    assert result.exit_code == 0, result.output
    assert dump(back) == dump(source)
