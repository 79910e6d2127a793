"""Statements through the DB-API cursor, for the store's bulk reads and writes: SQLAlchemy's per-row processing of
Core statements costs more than the statement itself at this size (docs/benchmarks.md). `?` placeholders, made
`%s` for PostgreSQL's driver."""

from __future__ import annotations

from typing import Any

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
    """`db_time` by dialect, for code that has no connection (a forked child: pimtrail.store.appending)."""
    if not sqlite:
        return when
    # isoformat writes the same for a naive time of years 1000-9999, in a quarter of strftime's time
    return when.isoformat(" ", "microseconds") if when.tzinfo is None and when.year >= 1000 else \
        when.strftime("%Y-%m-%d %H:%M:%S.%f")


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
