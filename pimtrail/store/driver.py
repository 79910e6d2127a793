"""Statements through the DB-API cursor, for the store's bulk reads and writes: SQLAlchemy's per-row processing of
Core statements costs more than the statement itself at this size (docs/benchmarks.md). `?` placeholders, made
`%s` for PostgreSQL's driver."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def _sql(conn: Connection, sql: str) -> str:
    return sql.replace("?", "%s") if conn.dialect.paramstyle in ("format", "pyformat") else sql


def raw_many(conn: Connection, sql: str, rows: list[tuple]) -> None:
    """executemany through the DB-API cursor (`?` placeholders): SQLAlchemy's per-row processing
    of Core statements costs more than the statement itself at this size (docs/benchmarks.md).
    Only for values both drivers take as they are (no datetimes)."""
    if not rows:
        return
    cursor = conn.connection.driver_connection.cursor()
    try:
        for start in range(0, len(rows), 5000):
            cursor.executemany(_sql(conn, sql), rows[start:start + 5000])
    finally:
        cursor.close()


def db_time(conn: Connection, when: Any) -> Any:
    """A naive UTC datetime as a DB-API parameter: SQLite keeps SQLAlchemy's DateTime as text, so
    it is written exactly as SQLAlchemy writes it; PostgreSQL's driver takes the datetime."""
    return time_param(conn.dialect.name == "sqlite", when)


def time_param(sqlite: bool, when: Any) -> Any:
    """`db_time` by dialect, for code that has no connection (a worker process: pimtrail.store.appending)."""
    if not sqlite:
        return when
    # SQLAlchemy's form (`%04d-%02d-%02d %02d:%02d:%02d.%06d`, the zone dropped): isoformat writes it for every year,
    # in a quarter of strftime's time; strftime's %Y writes years before 1000 without their zeros ("1-01-01"), which
    # no reader parsed again
    return (when if when.tzinfo is None else when.replace(tzinfo=None)).isoformat(" ", "microseconds")


def raw_rows(conn: Connection, sql: str, params: tuple) -> list[tuple]:
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(_sql(conn, sql), params)
        return cursor.fetchall()
    finally:
        cursor.close()


def insert(conn: Connection, table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    marks = ", ".join("?" * len(columns))
    raw_many(conn, f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)


@contextmanager
def indexes_after(conn: Connection, table, only: tuple[str, ...] | None = None) -> Iterator[None]:
    """Rows inserted meanwhile into an empty SQLite `table` are indexed after (its indexes dropped, then made
    again by their own statements): one sort per index instead of a B-tree insert per row and index, for a
    tenant's first snapshot in a new history. Inside the caller's transaction, so a failure rolls the indexes
    back with the rows. Otherwise (rows there already, another tenant's; PostgreSQL, whose other writers would
    wait on the dropped index's lock) nothing changes. Only for indexes whose later entries come at their end, or
    at the end of a run of them (`only`: those of the table's indexes named): an index made so has full pages, and
    random inserts later split them (the fact table's key and principal indexes so made grew the large history by
    3.3 MB a day instead of 1.8 MB). Events and activations come by time; `ix_fact_open` (tenant, kind, valid_to,
    element_n) takes a later version at the end of its kind's run, as elements are numbered in the order first
    seen, while a first snapshot's rows, in key order, reach it at random places (~0.5 s of the large tenant's)."""
    if conn.dialect.name != "sqlite" or raw_rows(conn, f"SELECT 1 FROM {table.name} LIMIT 1", ()):
        yield
        return
    made = raw_rows(conn, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                          "AND sql IS NOT NULL ORDER BY name", (table.name,))
    made = [(name, sql) for name, sql in made if only is None or name in only]
    for name, _ in made:
        conn.exec_driver_sql('DROP INDEX "{}"'.format(name.replace('"', '""')))
    yield
    for _, sql in made:
        conn.exec_driver_sql(sql)
