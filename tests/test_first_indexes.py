"""A new SQLite history's first snapshot: its event and activation tables, and the fact table's open-facts index,
are indexed after their rows went in (`pimtrail.store.driver.indexes_after`), the same indexes as before, and a
failure meanwhile leaves them as they were."""

from __future__ import annotations

import pytest
from first_ingest import _ingest, roots  # noqa: F401 -- fixtures

from pimtrail.collectors.exportdir import read_export
from pimtrail.errors import InputError
from pimtrail.store import HistoryStore
from pimtrail.store import appending


def _indexes(db: str) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name").fetchall()


def test_a_first_snapshot_into_empty_tables_indexes_them_after_as_they_were(roots, tmp_path, monkeypatch):
    """`indexes_after`: the event and activation tables of a new SQLite history, and the fact table's open-facts
    index, are indexed after their rows went in, by the statements that made their indexes: the same indexes, the
    same rows (the store's checks and `verify` read through them). A second tenant's first snapshot finds rows
    there: nothing is dropped."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from pimtrail.store import driver

    db = str(tmp_path / "h.db")
    HistoryStore.open(db, create=True).close()
    before = _indexes(db)
    dropped, statements = [], []
    real = driver.raw_rows

    def spy(conn, sql, params):
        if sql.startswith("SELECT name, sql FROM sqlite_master"):
            dropped.append(params[0])
        return real(conn, sql, params)

    def traced(conn, cursor, sql, *args):
        if sql.startswith("DROP INDEX"):
            statements.append(sql)

    monkeypatch.setattr(driver, "raw_rows", spy)
    event.listen(Engine, "before_cursor_execute", traced)
    try:
        _ingest(db, roots)  # verified
        assert dropped == ["fact", "event", "activation"]  # the first snapshot's only: the second finds rows
        assert _indexes(db) == before
        # of the fact table's, only the index whose later entries come at the end of their kind's run
        assert [s for s in statements if "ix_fact" in s] == ['DROP INDEX "ix_fact_open"']
        with HistoryStore.open(db) as store:  # another tenant's first snapshot
            snap = read_export(roots[0])
            snap.tenant_id = "11111111-2222-3333-4444-555555555555"
            store.ingest(snap)
            assert store.verify().ok
    finally:
        event.remove(Engine, "before_cursor_execute", traced)
    assert dropped == ["fact", "event", "activation"] and _indexes(db) == before


def test_a_failure_after_the_indexes_were_dropped_leaves_them(roots, tmp_path, monkeypatch):
    db = str(tmp_path / "h.db")
    HistoryStore.open(db, create=True).close()
    before = _indexes(db)
    real = appending.insert

    def failing(conn, table, columns, rows):  # the event rows, inside `indexes_after`: their indexes are dropped
        if table.name == "event":
            assert not conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index' "
                                            "AND tbl_name = 'event' AND sql IS NOT NULL").all()
            raise InputError("a failure while the rows go in")
        return real(conn, table, columns, rows)

    monkeypatch.setattr(appending, "insert", failing)
    with pytest.raises(InputError, match="a failure while the rows go in"):
        _ingest(db, roots[:1])
    assert _indexes(db) == before
    with HistoryStore.open(db) as store:
        assert store.snapshots() == []
