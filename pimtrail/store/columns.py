"""Column widths: PostgreSQL enforces them, SQLite does not. An identifier that does not fit is refused, never
cut (two would become one), so a history that SQLite accepted can always be copied into PostgreSQL; so is one
holding a NUL character, which PostgreSQL's text cannot hold (it was a traceback there, and stored by SQLite)."""

from __future__ import annotations

from functools import partial
from itertools import filterfalse
from operator import is_
from typing import TYPE_CHECKING, Any, NamedTuple

from pimtrail.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy import Table

_NONE = partial(is_, None)
TENANT = 64  # column widths of the schema (`pimtrail.store.schema`)
NAME = 128
KEY = 400
HASH = 64


class ColumnError(InputError):
    """`check_columns` refusing one value: its table, column and value, which `store.located` finds in the export."""

    def __init__(self, table: str, column: str, value: object, message: str):
        self.table, self.column, self.value = table, column, value
        self.message = f"{table}.{column} {message}"
        super().__init__(self.message, fix="not a Graph identifier; check the export")


class Widths(NamedTuple):
    """A table's name and the widths of some of its columns, for code that runs without the schema (the worker
    making a first snapshot's event rows, `pimtrail.store.appending`); a test holds them to the schema's."""

    name: str
    widths: dict[str, int]


EVENT = Widths("event", {"kind": NAME, "source_id": KEY, "principal_id": TENANT, "role_id": TENANT,
                         "correlation_id": TENANT})


def width(table: Table | Widths, column: str) -> int:
    return table.widths[column] if isinstance(table, Widths) else table.c[column].type.length


def check_ids(table: Table, rows: list[dict[str, Any]], *columns: str) -> None:
    """Identifiers are never cut (two would become one): one too long for its column is refused."""
    check_columns(table, {column: [r[column] for r in rows] for column in columns})


def check_columns(table: Table | Widths, values: dict[str, list[str | None]]) -> None:
    """`check_ids` of a column's values (None for none): the widest found by C loops, not a call per value. Each
    pass over a large snapshot's values takes a cache miss for nearly every one (they lie all over the heap): three
    passes, the join's type check standing in for a fourth (the large first snapshot's 180,000 events' columns:
    0.29 -> 0.22 s)."""
    for column, given in values.items():
        limit = width(table, column)
        present = list(filterfalse(_NONE, given))
        if not present:
            continue
        try:
            joined = "".join(present)
        except TypeError:  # a number or an object (even an empty one) where Graph gives an id
            odd = next(v for v in present if not isinstance(v, str))
            raise ColumnError(table.name, column, odd,
                              f"must be text, found {type(odd).__name__}: {str(odd)[:80]!r}") from None
        if max(map(len, present)) > limit:
            longest = max(present, key=len)
            raise ColumnError(table.name, column, longest, f"is longer than {limit} characters: {longest[:80]!r}")
        if "\x00" in joined:  # PostgreSQL's text holds no NUL
            odd = next(v for v in present if "\x00" in v)
            raise ColumnError(table.name, column, odd, f"holds a NUL character: {odd[:80]!r}")
