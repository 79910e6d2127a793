"""Closed fact versions, kept compressed apart from the open ones (migration 0008, docs/architecture.md
"Closed versions").

A fact that changes or disappears closes its open version. Before 0008 the closed version stayed a row of
`fact`, with its three index entries, next to the new version's row: a day at 0.5 % churn added ~2.6 MB to
a large tenant's history, and a year seven times the first snapshot's facts. Since 0008 an ingest moves
each version it closes into `fact_archive`, one zstd-compressed batch per kind and closing snapshot, and
writes a changed fact's new version into the row its old one held (same id, same index entries but the
`ix_fact_open` one, which follows its element number since 0010). `fact` then holds what is open (plus the
closed rows of histories written before 0008, which stay where they are), and a year of changes costs what
its closed versions compress to.

Every reader of versions reads both: `HistoryStore` unions what `versions` gives here with the rows of
`fact`, and `verify` hashes an archived version as it hashes a row. A record keeps everything its row
had: id, key, principal, role, group, digest, canonical text (hashed as stored), valid_from and element.
"""

from __future__ import annotations

import json
from typing import Iterable, Iterator, NamedTuple

import zstandard
from sqlalchemy import select
from sqlalchemy.engine import Connection

from pimtrail.errors import HistoryError
from pimtrail.store.frames import bounded
from pimtrail.store.schema import fact_archive_table, fact_by_key

LEVEL = 9  # zstd level: a day's batches are small; 9 makes them ~15 % smaller than 3 at no cost worth noting


class Version(NamedTuple):
    """One closed version: the columns of its `fact` row."""

    id: int
    kind: str
    key: str
    principal_id: str | None
    role_id: str | None
    group_id: str | None
    digest: str
    data: str
    valid_from: int
    valid_to: int
    element_n: int | None


# the record of a version in a batch: its row's columns less the tenant, kind and valid_to the batch names
RECORD = ("id", "key", "principal_id", "role_id", "group_id", "digest", "data", "valid_from", "element_n")
# the columns of a new `fact` row as `ingest` writes them
COLUMNS = ("tenant_id", "kind", "key", "principal_id", "role_id", "group_id", "digest", "data", "valid_from",
           "valid_to", "element_n")
CHUNK = 500  # keys per IN (...) list
MAX_BATCH = 1 << 30  # bytes a batch may decompress to (its frame says its size: a forged one is refused)


def pack(rows: list[tuple]) -> bytes:
    """A batch's stored data: the records (in RECORD order) as one JSON array, compressed."""
    return zstandard.ZstdCompressor(level=LEVEL).compress(json.dumps(rows, separators=(",", ":")).encode())


class ArchiveError(HistoryError):
    """A stored batch that does not decompress into records (`verify` names the snapshot that closed it)."""


def unpack(data: bytes, kind: str = "", valid_to: int | None = None, needle: bytes | None = None) -> list[list]:
    try:
        text = bounded(bytes(data), MAX_BATCH)
        if needle is not None and needle not in text:
            return []
        records = json.loads(text)
    except (zstandard.ZstdError, ValueError, TypeError) as exc:
        raise ArchiveError(f"the {kind} fact versions closed by snapshot #{valid_to} do not read ({exc})") from exc
    if type(records) is not list or not all(type(r) is list and len(r) == len(RECORD) for r in records):
        raise ArchiveError(f"the {kind} fact versions closed by snapshot #{valid_to} are not records of {len(RECORD)}")
    return records


def batches(conn: Connection, tenant: str) -> Iterator[tuple[str, int, int, bytes]]:
    """Every stored batch of the tenant as (kind, valid_to, count, data), not decoded."""
    t = fact_archive_table
    yield from conn.execute(select(t.c.kind, t.c.valid_to, t.c.count, t.c.data).where(t.c.tenant_id == tenant)
                            .order_by(t.c.kind, t.c.valid_to))


def records(kind: str, valid_to: int, data: bytes, needle: bytes | None = None) -> Iterator[Version]:
    """A batch's versions; none when `needle` (a key as JSON) is not in its text, which is then not parsed."""
    for ident, key, principal, role, group, digest, text, valid_from, element in unpack(data, kind, valid_to, needle):
        if not (type(ident) is int and type(key) is str and type(text) is str and type(valid_from) is int):
            raise ArchiveError(f"a {kind} fact version closed by snapshot #{valid_to} is not a record of one")
        yield Version(ident, kind, key, principal, role, group, digest, text, valid_from, valid_to, element)


def write(conn: Connection, tenant: str, seq: int, closed: dict[str, list[tuple]]) -> None:
    """Store the versions snapshot `seq` closed, {kind: [record, ...]}, one batch per kind."""
    rows = [{"tenant_id": tenant, "kind": kind, "valid_to": seq, "count": len(records), "data": pack(records)}
            for kind, records in sorted(closed.items()) if records]
    if rows:
        conn.execute(fact_archive_table.insert(), rows)


def close(conn: Connection, tenant: str, seq: int, closing: list[tuple[str, str]], opening: list[tuple]) -> list[tuple]:
    """Snapshot `seq` closes the open versions of `closing` ((kind, key) each): move them into the archive.
    A key that `opening` (new `fact` rows, in `COLUMNS` order) gives a new version gets it in its old row
    (same id: its index entries stay, and SQLite writes the row where it was); the rows of the others go.
    Returns the rows of `opening` left to insert."""
    from pimtrail.store.driver import raw_many, raw_rows  # the driver-level helpers of the bulk writes

    by_kind: dict[str, list[str]] = {}
    for kind, key in closing:
        by_kind.setdefault(kind, []).append(key)
    closed: dict[str, list[tuple]] = {}
    ids: dict[tuple[str, str], int] = {}
    table = fact_by_key(conn.dialect.name)
    for kind, keys in by_kind.items():
        keys.sort()
        for start in range(0, len(keys), CHUNK):
            part = keys[start:start + CHUNK]
            for record in raw_rows(conn, f"SELECT {', '.join(RECORD)} FROM {table} WHERE tenant_id = ? AND kind = ? "
                                         f"AND valid_to IS NULL AND key IN ({', '.join('?' * len(part))})",
                                   (tenant, kind, *part)):
                closed.setdefault(kind, []).append(tuple(record))
                ids[kind, record[1]] = record[0]
    for records in closed.values():
        records.sort()  # by id: the order they were written in
    write(conn, tenant, seq, closed)
    if not ids:  # nothing closed (a first snapshot): every row is new
        return opening
    at = {name: n for n, name in enumerate(COLUMNS)}
    kind_at, key_at = at["kind"], at["key"]
    updated = ("principal_id", "role_id", "group_id", "digest", "data", "valid_from", "element_n")
    replaced, left = [], []
    for row in opening:
        ident = ids.pop((row[kind_at], row[key_at]), None)
        if ident is None:
            left.append(row)
        else:
            replaced.append((*(row[at[name]] for name in updated), ident))
    raw_many(conn, f"UPDATE fact SET {', '.join(name + ' = ?' for name in updated)} WHERE id = ?", replaced)
    raw_many(conn, "DELETE FROM fact WHERE id = ?", [(ident,) for ident in sorted(ids.values())])
    return left


def versions(conn: Connection, tenant: str, kinds: Iterable[str] | None = None, *, upto: int | None = None,
             after: int | None = None, key: str | None = None) -> Iterator[Version]:
    """The archived versions of some kinds (all: None) that began by snapshot `upto` and were still valid
    after snapshot `after` (valid_to > after); both bounds optional. `at` a snapshot: upto = after = seq.
    `key`: only that fact's versions, and a batch whose text does not hold the key is not decoded."""
    t = fact_archive_table
    query = select(t.c.kind, t.c.valid_to, t.c.data).where(t.c.tenant_id == tenant)
    if kinds is not None:
        query = query.where(t.c.kind.in_(sorted(set(kinds))))
    if after is not None:
        query = query.where(t.c.valid_to > after)
    needle = None if key is None else json.dumps(key).encode()
    for kind, valid_to, data in conn.execute(query.order_by(t.c.kind, t.c.valid_to)):
        for version in records(kind, valid_to, data, needle):
            if (upto is None or version.valid_from <= upto) and (key is None or version.key == key):
                yield version
