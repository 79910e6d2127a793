"""`store.columns.check_columns`: an identifier PostgreSQL could not hold as SQLite took it is refused on both, one
value named, and nothing else is."""

from __future__ import annotations

import pytest

from pimtrail.store.columns import EVENT, ColumnError, check_columns

GOOD = ["a1b2c3d4-0000-4000-8000-000000000001", None, "x" * 400, "", "Ünïcode ✓"]


def test_identifiers_that_fit_pass():
    check_columns(EVENT, {"source_id": GOOD, "principal_id": [None, None], "role_id": []})


@pytest.mark.parametrize("odd, column, message", [
    (7, "source_id", "event.source_id must be text, found int: '7'"),
    ({}, "source_id", "event.source_id must be text, found dict: '{}'"),
    (b"id", "source_id", "event.source_id must be text, found bytes"),
    ("x" * 401, "source_id", "event.source_id is longer than 400 characters"),
    ("y" * 65, "principal_id", "event.principal_id is longer than 64 characters"),
    ("id\x00x", "role_id", "event.role_id holds a NUL character: 'id\\x00x'"),
])
def test_one_odd_value_among_good_ones_is_refused_and_named(odd, column, message):
    values = GOOD[:2] + [odd] + GOOD[2:] if column == "source_id" else [None, "ok", odd]
    with pytest.raises(ColumnError) as caught:
        check_columns(EVENT, {column: values})
    assert message in str(caught.value) and caught.value.value == odd
    assert (caught.value.table, caught.value.column) == ("event", column)
