"""A new SQLite history's first snapshot: its rows written first, the indexes over them built after.

A large tenant's first snapshot is ~590,000 rows of `fact`, `event` and `activation`. SQLite inserting each into
five secondary indexes as it goes walks and splits their pages row by row; building each index once from the
rows sorts them instead (measured: the same rows in 11.4 s with the indexes in place, 8.7 s building them after,
docs/benchmarks.md "Storage and first ingest, round 8"). That is worth doing only while the tables hold nothing:
into a history holding rows, building an index again would cost more than it saves.

Inside the ingest's transaction: the indexes are dropped before the rows and created again after them, with
their declarations (`pimtrail.store.schema`), so the schema is the one the migrations make. When the ingest
fails, the transaction rolls back, the drop with it. Nothing the ingest reads of the tenant uses them: the
tenant has nothing stored. Writers of other tenants wait on SQLite's one write lock, readers see the history
as it was before the transaction (WAL).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Index
from sqlalchemy.engine import Connection

from pimtrail.store.schema import activation_table, event_table, fact_table

ROWS_MIN = 100_000  # facts and events of a first snapshot worth building the indexes after
TABLES = (fact_table, event_table, activation_table)


def _indexes() -> list[Index]:
    return sorted((index for table in TABLES for index in table.indexes), key=lambda index: index.name)


@contextmanager
def indexes_after(conn: Connection, rows: int) -> Iterator[bool]:
    """Drop the indexes of `TABLES` while the block writes `rows` rows into a SQLite history that holds none,
    and build them again when it ends without an error. Yields whether it did."""
    if conn.dialect.name != "sqlite" or rows < ROWS_MIN or any(
            conn.exec_driver_sql(f"SELECT 1 FROM {table.name} LIMIT 1").first() for table in TABLES):
        yield False
        return
    indexes = _indexes()
    for index in indexes:
        conn.exec_driver_sql(f"DROP INDEX {index.name}")
    yield True
    for index in indexes:
        index.create(conn)
