"""The open facts an ingest compares a snapshot with (`ingest._version_facts`), read whole or, on a daily read
against the history, around the elements read unparsed (docs/architecture.md "Reading what did not change").

An element read unparsed (`Page.skipped`) keeps the open facts naming it (`fact.element_n`) of the kinds its
dataset gives. On a large daily read those are ~320,000 of ~356,000 open facts, and nothing is compared with
them but their count and the few keys the snapshot gives again. So for each kind with elements read unparsed
only the rest is read: the open facts naming no element (`element_n` null) or a number between the runs of
those elements' numbers (elements that went away or changed, elements parsed, elements of other datasets),
each run's gap a range of `ix_fact_open` (tenant, kind, valid_to, element_n: migration 0010); the open facts
naming the unparsed elements are counted, and looked up by key (`ix_fact_key`) only where the snapshot gives
the key again. Before that, SQL checks each element read unparsed is named by an open fact of a kind its
dataset gives (distinct `element_n` per run, from the index alone). A dataset that does not pass falls back to
reading every open fact, which checks the elements one by one and refuses the read (`receipts.Unrecognised`)
as before. Either way `ingest` gets the same `OpenFacts`, but for `by_element` holding only the keys it needs.
"""

from __future__ import annotations

from itertools import compress
from operator import not_
from typing import Callable, NamedTuple

from sqlalchemy.engine import Connection

from sqlalchemy import select

from pimtrail.collectors.datasets import SIGN_IN_DATASET
from pimtrail.collectors.normalize import KIND_SOURCES, kind_sources, stored_sign_in_source
from pimtrail.model import CollectedSnapshot
from pimtrail.store.driver import raw_rows
from pimtrail.store.receipts import Unrecognised, _rle_numbers
from pimtrail.store.schema import coverage_table, fact_by_key, snapshot_table

RANGES = 1000  # runs or gaps per statement (their bounds are written into it as integers)
KEYS = 500  # keys per IN (...) list


class OpenFacts(NamedTuple):
    """One kind's open facts: those naming no element read unparsed as {key: digest} and {key: element
    number as text, "" for none}, and those naming one (`Page.skipped`: their element stands, so they are
    kept) as {key: (digest, element number)}: all of them when read whole, else only those whose keys the
    snapshot gives again; `unparsed` counts all of them."""
    digests: dict[str, str]
    numbers: dict[str, str]
    by_element: dict[str, tuple[str, str]]
    unparsed: int


def read(conn: Connection, tenant: str, kept_numbers: dict[str, set[int]],
         given: Callable[[str], set[str]]) -> dict[str, OpenFacts]:
    """The tenant's open facts by kind. `kept_numbers`: the numbers of the elements read unparsed, by dataset
    (`receipts.Plan.kept_numbers`); `given(kind)`: the keys of a kind the snapshot gives (`ingest.Facts.keys`).
    Raises `Unrecognised` when an element read unparsed names no open fact of a kind its dataset gives."""
    by_dataset = {name: (len(numbers), _rle_numbers(sorted(numbers)))
                  for name, numbers in kept_numbers.items() if numbers}
    # Which datasets give each kind here: sign-ins come from the `sign_in_activity` dataset, the users' elements
    # or nowhere (`sign_in_source`). With elements read unparsed the snapshot was read against the tenant's
    # newest one (`ingest` checks) and has its sign-in source (`check_sign_in_source`): that one's is taken.
    sources = kind_sources(_newest_sign_in_source(conn, tenant)) if by_dataset else KIND_SOURCES
    by_kind: dict[str, list[list[int]]] = {}  # runs of the numbers read unparsed of the kind's datasets
    for kind, sources_of_kind in sources.items():
        parts = [name for name in sources_of_kind if name in by_dataset]
        if len(parts) == 1:
            by_kind[kind] = by_dataset[parts[0]][1]  # the same list: `_each_named` asks whether it is
        elif parts:
            by_kind[kind] = _rle_numbers(sorted(set().union(*(kept_numbers[name] for name in parts))))
    if not by_kind:
        return read_whole(conn, tenant, {})
    counted: dict[str, int] = {}  # kind: its open facts naming an element read unparsed, where counted
    if not _each_named(conn, tenant, by_dataset, by_kind, counted, sources):  # one dataset does not pass: all looked at
        return read_whole(conn, tenant, {kind: {str(n) for first, count in runs for n in range(first, first + count)}
                                         for kind, runs in by_kind.items()})
    out = read_whole(conn, tenant, {}, kinds=[kind for kind in _kinds(conn, tenant) if kind not in by_kind])
    for kind, runs in by_kind.items():
        out[kind] = _around(conn, tenant, kind, runs, given(kind), counted.get(kind))
    return out


def check_sign_in_source(conn: Connection, snap: CollectedSnapshot) -> None:
    """Refuse (`Unrecognised`: `pimtrail collect` reads the export again in full) a snapshot read against
    another (`based_on`) whose sign-ins come from elsewhere (`collectors.normalize.sign_in_source`): an export
    that starts or stops writing `sign_in_activity`, or whose users start or stop carrying signInActivity. Its
    users elements read unparsed would keep, or fail to keep, sign-in facts that a full read does not give."""
    if snap.based_on is None:
        return
    cov = next((vars(c) for c in snap.coverage if c.dataset == SIGN_IN_DATASET), None)
    now, before = stored_sign_in_source(cov), _sign_in_source(conn, snap.based_on)
    if now != before:
        raise Unrecognised(f"sign-ins from {now or 'nowhere'}, in snapshot {snap.based_on} from {before or 'nowhere'}")


def _sign_in_source(conn: Connection, snapshot_id: int) -> str | None:
    row = conn.execute(select(coverage_table.c.status, coverage_table.c.optional).where(
        coverage_table.c.snapshot_id == snapshot_id, coverage_table.c.dataset == SIGN_IN_DATASET)).mappings().first()
    return stored_sign_in_source(row)


def _newest_sign_in_source(conn: Connection, tenant: str) -> str | None:
    newest = conn.execute(select(snapshot_table.c.id).where(snapshot_table.c.tenant_id == tenant)
                          .order_by(snapshot_table.c.seq.desc()).limit(1)).scalar()
    return _sign_in_source(conn, newest) if newest is not None else None


def _kinds(conn: Connection, tenant: str) -> list[str]:
    """The kinds of the tenant's open facts: one index step per kind (`ix_fact_open` leads with tenant and kind)."""
    step = "SELECT min(kind) FROM fact WHERE tenant_id = ? AND valid_to IS NULL"
    return [kind for kind, in raw_rows(conn, f"WITH RECURSIVE k(kind) AS ({step} UNION ALL SELECT ({step} AND kind > "
                                             "k.kind) FROM k WHERE k.kind IS NOT NULL) SELECT kind FROM k WHERE kind IS "
                                             "NOT NULL", (tenant, tenant))]


def _each_named(conn: Connection, tenant: str, by_dataset: dict[str, tuple[int, list[list[int]]]],
                by_kind: dict[str, list[list[int]]], counted: dict[str, int],
                sources: dict[str, tuple[str, ...]]) -> bool:
    """Whether every element read unparsed is named by an open fact of one kind its dataset gives, counted in
    SQL: for some kind whose unparsed elements are exactly the dataset's, as many distinct numbers named within
    their runs as there are elements. (Short of that, `read_whole` looks at the numbers one by one.) `counted`
    gets the open facts of each kind counted so, naming one of those numbers."""
    for name, (count, runs) in by_dataset.items():
        for kind in [kind for kind, given_by in sources.items() if name in given_by and by_kind[kind] is runs]:
            counted[kind], named = _named_in(conn, tenant, kind, runs)
            if named == count:
                break
        else:
            return False
    return True


def _ranges(bounds: list[tuple[int, int]]) -> str:
    return ", ".join(f"({int(lo)}, {int(hi)})" for lo, hi in bounds)  # integers only: nothing else is written


# each range looked up in the index: SQLite keeps a CROSS JOIN's order (without statistics it may otherwise walk
# the kind's index entries once per range)
_RANGES_FIRST = "r CROSS JOIN fact f"


def _named_in(conn: Connection, tenant: str, kind: str, runs: list[list[int]]) -> tuple[int, int]:
    """How many open facts of `kind` name an element number within `runs` ([[first, count], ...]), and how many
    distinct numbers they name."""
    facts = named = 0
    for at in range(0, len(runs), RANGES):
        bounds = [(first, first + count - 1) for first, count in runs[at:at + RANGES]]
        (rows, distinct), = raw_rows(
            conn, f"WITH r(lo, hi) AS (VALUES {_ranges(bounds)}) SELECT count(*), count(DISTINCT f.element_n) "
                  f"FROM {_RANGES_FIRST} WHERE f.tenant_id = ? AND f.kind = ? AND f.valid_to IS NULL "
                  "AND f.element_n >= r.lo AND f.element_n <= r.hi", (tenant, kind))
        facts, named = facts + rows, named + distinct
    return facts, named


def _around(conn: Connection, tenant: str, kind: str, runs: list[list[int]], given: set[str],
            unparsed: int | None) -> OpenFacts:
    """One kind's open facts but those naming a number within `runs` (the elements read unparsed of its
    datasets): read through `ix_fact_open` (null, before the first run, between runs, after the last). Those
    are counted (`unparsed`, when `_named_in` counted them already), and read by key only where the snapshot
    gives the key again (`given`)."""
    select = "SELECT f.key, f.digest, f.element_n FROM fact f"
    where = "f.tenant_id = ? AND f.kind = ? AND f.valid_to IS NULL AND "
    rows = raw_rows(conn, f"{select} WHERE {where}f.element_n IS NULL UNION ALL "
                          f"{select} WHERE {where}f.element_n < ? UNION ALL {select} WHERE {where}f.element_n > ?",
                    (tenant, kind, tenant, kind, runs[0][0], tenant, kind, runs[-1][0] + runs[-1][1] - 1))
    gaps = [(first + count - 1, after) for (first, count), (after, _) in zip(runs, runs[1:])]
    for at in range(0, len(gaps), RANGES):
        rows += raw_rows(conn, f"WITH r(lo, hi) AS (VALUES {_ranges(gaps[at:at + RANGES])}) SELECT f.key, f.digest, "
                               f"f.element_n FROM {_RANGES_FIRST} WHERE {where}f.element_n > r.lo AND f.element_n < r.hi",
                         (tenant, kind))
    if unparsed is None:
        (total,), = raw_rows(conn, "SELECT count(*) FROM fact WHERE tenant_id = ? AND kind = ? AND valid_to IS NULL",
                             (tenant, kind))
        unparsed = total - len(rows)
    digests = {key: digest for key, digest, _ in rows}
    numbers = {key: "" if n is None else str(n) for key, _, n in rows}
    wanted = sorted(given.difference(digests))
    by_element: dict[str, tuple[str, str]] = {}
    table = fact_by_key(conn.dialect.name)
    for at in range(0, len(wanted), KEYS):
        part = wanted[at:at + KEYS]
        for key, digest, n in raw_rows(conn, f"SELECT key, digest, element_n FROM {table} WHERE tenant_id = ? AND kind = ? "
                                             f"AND valid_to IS NULL AND key IN ({', '.join('?' * len(part))})",
                                       (tenant, kind, *part)):
            by_element[key] = (digest, str(n))  # not among the rest: it names an element read unparsed
    return OpenFacts(digests, numbers, by_element, unparsed)


def read_whole(conn: Connection, tenant: str, unparsed_by_kind: dict[str, set[str]],
               kinds: list[str] | None = None) -> dict[str, OpenFacts]:
    """The tenant's open facts by kind (of `kinds`; None: all), each split by whether it names one of the
    element numbers read unparsed (those of each kind's datasets, `unparsed_by_kind`, as text); raises
    `Unrecognised` when one of those numbers is named by none of them.
    Read as three texts per kind (keys, digests, element numbers) joined in SQL and split here: building
    350,000 row tuples costs more than the read itself, and each step over them is a C loop (`zip`,
    `compress`), not a Python one. A key holding the separator character (never a Graph id, but the
    export is untrusted) makes the count differ: rows then."""
    c = "char(31)" if conn.dialect.name == "sqlite" else "chr(31)"
    # the three must list the rows in one order: SQLite's group_concat follows its one scan of the rows,
    # PostgreSQL's string_agg is told (a parallel aggregate could otherwise combine them otherwise)
    agg = "group_concat({}, %s)" % c if conn.dialect.name == "sqlite" else "string_agg({}, %s ORDER BY key)" % c
    columns = ", ".join(agg.format(column) for column in ("key", "digest", "coalesce(cast(element_n AS text), '')"))
    out: dict[str, OpenFacts] = {}
    named: set[str] = set()
    for kind, count, keys, digests, numbers in raw_rows(
            conn, f"SELECT kind, count(*), {columns} FROM fact WHERE tenant_id = ? AND valid_to IS NULL "
                  f"{'' if kinds is None else 'AND kind IN (%s) ' % ', '.join('?' * len(kinds))}GROUP BY kind",
            (tenant, *(kinds or ()))) if kinds is None or kinds else ():
        keys, digests, numbers = keys.split("\x1f"), digests.split("\x1f"), numbers.split("\x1f")
        if len(keys) != count:
            rows = raw_rows(conn, "SELECT key, digest, element_n FROM fact WHERE tenant_id = ? AND kind = ? "
                                  "AND valid_to IS NULL", (tenant, kind))
            keys, digests = [k for k, _, _ in rows], [d for _, d, _ in rows]
            numbers = ["" if n is None else str(n) for _, _, n in rows]
        by_element: dict[str, tuple[str, str]] = {}
        unparsed = unparsed_by_kind.get(kind)
        flags = list(map(unparsed.__contains__, numbers)) if unparsed else None
        if flags is not None and any(flags):
            named.update(compress(numbers, flags))
            by_element = dict(compress(zip(keys, zip(digests, numbers)), flags))
            rest = list(map(not_, flags))
            keys, digests, numbers = list(compress(keys, rest)), compress(digests, rest), compress(numbers, rest)
        out[kind] = OpenFacts(dict(zip(keys, digests)), dict(zip(keys, numbers)), by_element, len(by_element))
    if named != set().union(*unparsed_by_kind.values()):  # before anything is written
        # an element read unparsed gives the open facts naming it; one naming none gave a fact another element
        # gives too (which names only one of them): the read is refused, to be read again in full
        raise Unrecognised("an element read unparsed names no open fact: read it in full")
    return out
