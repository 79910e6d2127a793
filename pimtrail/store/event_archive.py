"""Events past the tenant's audit window, kept as one zstd batch per kind and day (`event_archive`, migration
0009; docs/architecture.md, "Old events").

An event is a row of `event` while a collection may bring it again: its unique index finds it then. Older than
the widest audit window the tenant's collections covered (at least what Entra keeps), no collection asks for it
again unless it reads the whole window after a gap, and its row with two index entries (~625 bytes an audit event
on the large tenant) costs eight times what its day's batch does (~80 bytes an event: 2,000 events of a day are
much alike). Each ingest moves the rows of the days before that horizon into their day's batch.

The invariant every reader builds on: per tenant and kind, each archived day precedes every row (`edge`). A reader
of a time range reads the batches of its days, then the rows, and gets the order the rows alone gave (time, then
source id in code-point order). An event of an archived day brought again is found in its batch, not stored twice;
one not stored before joins its day's batch. `verify` reads every batch, hashes its texts as it hashes rows, and
checks counts, days and the invariant.

A batch: one JSON line of the columns (source ids, times, principal, role and correlation ids, first_seen),
then each event's stored text, the canonical JSON that is hashed, on a line of its own (canonical JSON holds
no line break), in (time, source id) order; compressed with zstd.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Callable, Iterable, Iterator, NamedTuple

import zstandard
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from pimtrail.collectors.datasets import AUDIT_DATASET, AUDIT_RETENTION_DAYS
from pimtrail.errors import HistoryError
from pimtrail.store.archive import LEVEL, MAX_BATCH
from pimtrail.store.frames import bounded
from pimtrail.store.schema import coverage_table, event_archive_table, snapshot_table

# the event kinds whose source is collected in windows, by the dataset whose coverage records them
WINDOWED = {"audit": AUDIT_DATASET}
COLUMNS = ("source_id", "occurred_at", "principal_id", "role_id", "correlation_id", "first_seen")


class Archived(NamedTuple):
    """One archived event: its row's columns, its text as `decompress` gives a row's `zdata`."""

    occurred_at: datetime
    source_id: str
    principal_id: str | None
    role_id: str | None
    correlation_id: str | None
    first_seen: int
    text: str


class EventArchiveError(HistoryError):
    """A stored batch that does not read (`verify` names the day)."""


def pack(events: list[Archived]) -> bytes:
    events = sorted(events, key=lambda e: (e.occurred_at, e.source_id))
    head = {"source_id": [e.source_id for e in events],
            "occurred_at": [e.occurred_at.isoformat(timespec="microseconds") for e in events],
            "principal_id": [e.principal_id for e in events], "role_id": [e.role_id for e in events],
            "correlation_id": [e.correlation_id for e in events], "first_seen": [e.first_seen for e in events]}
    text = "\n".join([json.dumps(head, separators=(",", ":")), *(e.text for e in events)])
    return zstandard.ZstdCompressor(level=LEVEL).compress(text.encode())


def unpack(kind: str, day: str, data: bytes) -> list[Archived]:
    """A batch's events, in order; EventArchiveError when it does not read as one."""
    where = f"the {kind} events of {day}"
    try:
        head, *texts = bounded(bytes(data), MAX_BATCH).decode().split("\n")
        columns = json.loads(head)
        values = [columns[name] for name in COLUMNS]
        times = list(map(datetime.fromisoformat, values[1]))
    except (zstandard.ZstdError, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise EventArchiveError(f"{where} do not read ({exc})") from exc
    if not all(type(v) is list and len(v) == len(texts) for v in values) or \
            not all(type(s) is str for s in values[0]) or not all(type(n) is int for n in values[5]):
        raise EventArchiveError(f"{where} are not {len(COLUMNS)} columns of one length per event")
    if any(t.date().isoformat() != day for t in times):
        raise EventArchiveError(f"{where} hold an event of another day")
    return [Archived(t, s, p, r, c, f, x) for t, s, p, r, c, f, x in
            zip(times, values[0], values[2], values[3], values[4], values[5], texts)]


def edge(conn: Connection, tenant: str, kind: str) -> datetime | None:
    """Where the rows of a kind begin: midnight after its last archived day (None: nothing archived)."""
    t = event_archive_table
    last = conn.execute(select(func.max(t.c.day)).where(t.c.tenant_id == tenant, t.c.kind == kind)).scalar()
    return None if last is None else after(last)


def after(day: str) -> datetime:
    """Midnight after a batch's day (YYYY-MM-DD)."""
    return datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time())


def read(conn: Connection, tenant: str, kind: str, start: datetime | None = None, end: datetime | None = None,
         *, through: bool = False, readable: bool = False) -> Iterator[Archived]:
    """The archived events of a kind in [start, end) (`through`: [start, end]), in order: (time, source id).
    A batch that does not read is an EventArchiveError; with `readable` it is left out (`verify` counts it)."""
    t = event_archive_table
    query = select(t.c.day, t.c.data).where(t.c.tenant_id == tenant, t.c.kind == kind)
    if start is not None:
        query = query.where(t.c.day >= start.date().isoformat())
    if end is not None:
        query = query.where(t.c.day <= end.date().isoformat())
    for day, data in conn.execute(query.order_by(t.c.day)).all():
        try:
            events = unpack(kind, day, data)
        except EventArchiveError:
            if readable:
                continue
            raise
        for event in events:
            if (start is None or event.occurred_at >= start) and \
                    (end is None or event.occurred_at < end or through and event.occurred_at == end):
                yield event


def known(conn: Connection, tenant: str, kind: str, days: Iterable[str]) -> set[str]:
    """The source ids archived on some days."""
    t = event_archive_table
    out: set[str] = set()
    for day, data in conn.execute(select(t.c.day, t.c.data).where(
            t.c.tenant_id == tenant, t.c.kind == kind, t.c.day.in_(sorted(set(days))))).all():
        out.update(e.source_id for e in unpack(kind, day, data))
    return out


def add(conn: Connection, tenant: str, kind: str, events: Iterable[Archived]) -> None:
    """Put events into their days' batches (a day's batch is read, joined and written again)."""
    t = event_archive_table
    by_day: dict[str, list[Archived]] = {}
    for event in events:
        by_day.setdefault(event.occurred_at.date().isoformat(), []).append(event)
    if not by_day:
        return
    stored = dict(conn.execute(select(t.c.day, t.c.data).where(
        t.c.tenant_id == tenant, t.c.kind == kind, t.c.day.in_(sorted(by_day)))).all())
    for day, events in sorted(by_day.items()):
        if day in stored:
            events = unpack(kind, day, stored[day]) + events
            conn.execute(t.delete().where(t.c.tenant_id == tenant, t.c.kind == kind, t.c.day == day))
        conn.execute(t.insert().values(tenant_id=tenant, kind=kind, day=day, count=len(events), data=pack(events)))


def horizon(conn: Connection, tenant: str, kind: str, collected_at: datetime) -> datetime | None:
    """Midnight before which the events of a kind are archived by a snapshot collected at `collected_at`: the
    widest window the tenant's collections of its dataset covered (at least what Entra keeps) before that
    time, to the day. None: a kind not collected in windows, kept as rows."""
    dataset = WINDOWED.get(kind)
    if dataset is None:
        return None
    c = coverage_table
    widest = timedelta(days=AUDIT_RETENTION_DAYS)
    for low, high in conn.execute(select(c.c.window_from, c.c.window_to).join(
            snapshot_table, snapshot_table.c.id == c.c.snapshot_id).where(
            snapshot_table.c.tenant_id == tenant, c.c.dataset == dataset, c.c.status == "ok",
            c.c.window_from.is_not(None), c.c.window_to.is_not(None))):
        widest = max(widest, high - low)
    if collected_at - datetime.min <= widest:  # a window as wide as the calendar (one ending in 9999): nothing before
        return None
    return datetime.combine((collected_at - widest).date(), datetime.min.time())


def compact(conn: Connection, tenant: str, kind: str, before: datetime, decompress: Callable[[bytes], str]) -> int:
    """Move the rows of a kind from before `before` (a midnight) into their days' batches, a day at a time (a
    history's first ingest since 0009 moves a year's backlog); returns how many. A row whose data does not
    decompress stops the move before its day: the invariant holds, and `verify` names the row."""
    from pimtrail.store.eventdata import EventDataError
    from pimtrail.store.receipts import db_time, raw_many, raw_rows

    moved = 0
    while True:
        first = raw_rows(conn, "SELECT min(occurred_at) FROM event WHERE tenant_id = ? AND kind = ? "
                               "AND occurred_at < ?", (tenant, kind, db_time(conn, before)))[0][0]
        if first is None:
            return moved
        day = datetime.combine(naive(first).date(), datetime.min.time())
        where = ("FROM event WHERE tenant_id = ? AND kind = ? AND occurred_at >= ? AND occurred_at < ?",
                 (tenant, kind, db_time(conn, day), db_time(conn, min(before, day + timedelta(days=1)))))
        rows = raw_rows(conn, "SELECT occurred_at, source_id, principal_id, role_id, correlation_id, first_seen, "
                              "zdata " + where[0], where[1])
        try:
            events = [Archived(naive(at), source, principal, role, correlation, first, decompress(zdata))
                      for at, source, principal, role, correlation, first, zdata in rows]
        except EventDataError:
            return moved
        add(conn, tenant, kind, events)
        raw_many(conn, "DELETE " + where[0], [where[1]])  # the same rows: the ingest holds the tenant's write lock
        moved += len(rows)


def compact_old(conn: Connection, tenant: str, collected_at: datetime) -> int:
    """Archive what a snapshot collected at `collected_at` leaves past the horizon of each windowed kind
    (inside the ingest's transaction); returns how many events moved."""
    from pimtrail.store.eventdata import Codec

    moved, codec = 0, None
    for kind in WINDOWED:
        before, last = horizon(conn, tenant, kind, collected_at), edge(conn, tenant, kind)
        if before is None or last is not None and before <= last:
            continue  # rows begin at `last`: an event of an earlier day joined its batch as it came
        codec = codec or Codec.load(conn, tenant)
        moved += compact(conn, tenant, kind, before, codec.decompress)
    return moved


def batches(conn: Connection, tenant: str) -> Iterator[tuple[str, str, int, bytes]]:
    """Every stored batch of a tenant as (kind, day, count, data), not decoded (`verify`)."""
    t = event_archive_table
    yield from conn.execute(select(t.c.kind, t.c.day, t.c.count, t.c.data).where(t.c.tenant_id == tenant)
                            .order_by(t.c.kind, t.c.day))


def passing(decompress: Callable[[bytes], str]) -> Callable[[bytes | str], str]:
    """`decompress` for data that may be an archived event's text already (readers of rows and batches)."""
    return lambda data: data if data.__class__ is str else decompress(data)


def naive(value: datetime | str) -> datetime:
    """occurred_at as the driver gives it: SQLite keeps SQLAlchemy's DateTime as text."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
