"""Column widths: PostgreSQL enforces them, SQLite does not. An identifier that does not fit is refused, never
cut (two would become one), so a history that SQLite accepted can always be copied into PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from pimtrail.errors import InputError


def width(table: Table, column: str) -> int:
    return table.c[column].type.length


def check_ids(table: Table, rows: list[dict[str, Any]], *columns: str) -> None:
    """Identifiers are never cut (two would become one): one too long for its column is refused."""
    check_columns(table, {column: [r[column] for r in rows] for column in columns})


def check_columns(table: Table, values: dict[str, list[str | None]]) -> None:
    """`check_ids` of a column's values (None for none): the widest found by C loops, not a call per value."""
    for column, given in values.items():
        limit = width(table, column)
        present = list(filter(None, given))
        if present and max(map(len, present)) > limit:
            longest = max(present, key=len)
            raise InputError(f"{table.name}.{column} is longer than {limit} characters: {longest[:80]!r}",
                             fix="not a Graph identifier; check the export")
