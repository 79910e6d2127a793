"""`HistoryStore`'s readers of the event log and of the PIM activations derived from it (`activation`):
a mixin, so that the store stays one API (`pimtrail.store.history`)."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from sqlalchemy import or_, select

from pimtrail.activations import Activation
from pimtrail.store import event_archive as _earc
from pimtrail.store import receipts as _receipts
from pimtrail.store.driver import db_time as conn_time
from pimtrail.store.driver import raw_rows, time_param
from pimtrail.store.eventdata import Codec, holds
from pimtrail.store.schema import activation_table, event_table
from pimtrail.timeutil import iso

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from pimtrail.model import EventRecord


def stored_ids(conn: Connection, tenant: str, events: list[EventRecord]
               ) -> tuple[set[tuple[str, str]], dict[str, datetime | None]]:
    """The (kind, source id) of `events` the history holds, and where each kind's rows begin (`event_archive`): which
    of a snapshot's events are new (`appending.append_events`)."""
    from pimtrail.store.ingest import chunks

    known: set[tuple[str, str]] = set()
    by_kind: dict[str, list[str]] = {}
    for ev in events:
        by_kind.setdefault(ev.kind, []).append(ev.source_id)
    edges = {kind: _earc.edge(conn, tenant, kind) for kind in by_kind}  # rows begin there (event_archive)
    for kind, ids in by_kind.items():
        # audit windows overlap: most events are known. One range read finds those from the
        # snapshot's earliest event on; only the rest are looked up by id.
        if edges[kind] is None and not raw_rows(
                conn, "SELECT 1 FROM event WHERE tenant_id = ? AND kind = ? LIMIT 1", (tenant, kind)):
            continue  # none stored yet (a tenant's first snapshot): nothing to look up, 180,000 ids on a large one
        since = min(ev.occurred_at for ev in events if ev.kind == kind)
        wanted = set(ids)
        edge = edges[kind]
        if edge is not None and since < edge:  # events of archived days: looked for in their batches
            days = {ev.occurred_at.date().isoformat() for ev in events if ev.kind == kind and ev.occurred_at < edge}
            found = _earc.known(conn, tenant, kind, days) & wanted
            known.update((kind, sid) for sid in found)
            wanted -= found
        # through the driver: SQLAlchemy's per-row processing of 180,000 ids costs more than the read
        rows = raw_rows(conn, "SELECT source_id FROM event WHERE tenant_id = ? AND kind = ? AND occurred_at >= ?",
                        (tenant, kind, conn_time(conn, since)))
        known.update((kind, sid) for (sid,) in rows if sid in wanted)
        for part in chunks(sorted(sid for sid in wanted if (kind, sid) not in known), 500):
            known.update((kind, sid) for (sid,) in raw_rows(
                conn, f"SELECT source_id FROM event WHERE tenant_id = ? AND kind = ? AND source_id IN "
                      f"({', '.join('?' * len(part))})", (tenant, kind, *part)))
    return known, edges


class EventReads:
    """Reading events and activations; the store gives `engine`, `_order` and `_filtered`."""

    def events(self, tenant_id: str, kind: str, start: datetime | None = None, end: datetime | None = None,
               contains: Iterable[str] | None = None, principal_ids: Iterable[str] | None = None,
               correlation_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The events of one kind in [start, end), by time then source id. `contains`: only events whose
        stored JSON holds one of these texts, letter case ignored (a filter on the text that may let more
        through: the caller checks the field it means); `principal_ids`: only events whose principal (the
        target) is one of these; `correlation_ids`: only events with one of these correlation ids."""
        query = self._event_query(tenant_id, kind, start, end, event_table.c.source_id, event_table.c.occurred_at,
                                  event_table.c.zdata)
        test = holds(contains)
        out = []
        with self._reading() as conn:  # the days archived, then the rows (pimtrail.store.event_archive)
            codec = Codec.load(conn, tenant_id)
            archived = _earc.read(conn, tenant_id, kind, start, end)
            if principal_ids is None and correlation_ids is None:
                rows = conn.execute(query.order_by(event_table.c.occurred_at, self._order(event_table.c.source_id)))
            else:
                if principal_ids is not None and correlation_ids is not None:
                    raise ValueError("events: principal_ids or correlation_ids, not both")
                ids, column = (principal_ids, event_table.c.principal_id) if principal_ids is not None else \
                    (correlation_ids, event_table.c.correlation_id)
                ids = {i for i in ids if i}  # as `_filtered` takes them
                rows = sorted(self._filtered(query, ids, None, column, conn=conn),
                              key=lambda r: (r.occurred_at, r.source_id))
                archived = (e for e in archived if getattr(e, column.name) in ids)
            # one text at a time: a quarter of a large tenant's events is ~230 MB of text, most of it filtered out
            for source_id, text in itertools.chain(((e.source_id, e.text) for e in archived),
                                                   ((r.source_id, codec.decompress(r.zdata)) for r in rows)):
                if test is None or test(text):
                    out.append(dict(json.loads(text), _source_id=source_id))
        return out

    def iter_events(self, tenant_id: str, kind: str, start: datetime | None = None, end: datetime | None = None,
                    contains: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """`events`, streamed: one decoded event at a time, in the same order, for readers that keep only
        part of each (a quarter of a large tenant's audit log is 180,000 events)."""
        query = self._event_query(tenant_id, kind, start, end, event_table.c.source_id, event_table.c.zdata)
        test = holds(contains)
        with self._reading() as conn:
            decompress = _earc.passing(Codec.load(conn, tenant_id).decompress)
            archived = ((e.source_id, e.text) for e in _earc.read(conn, tenant_id, kind, start, end))
            for source_id, zdata in itertools.chain(archived, conn.execution_options(yield_per=2000).execute(
                    query.order_by(event_table.c.occurred_at, self._order(event_table.c.source_id)))):
                text = decompress(zdata)
                if test is None or test(text):
                    event = json.loads(text)
                    event["_source_id"] = source_id
                    yield event

    def event_texts(self, tenant_id: str, kind: str, start: datetime, end: datetime, activities: Iterable[str]
                    ) -> Iterator[tuple[str, str | None, str, str]]:
        """(source id, correlation id, activity, stored JSON text) of the events of one kind in [start, end) whose
        `activity` (a string) holds one of `activities`, letter case ignored; in `events`' order, none of them
        decoded: the activity is cut from the text (`activations.activity_of`)."""
        from pimtrail.store import joined

        with self._reading() as conn:
            yield from joined.event_texts(conn, tenant_id, kind, start, end, Codec.load(conn, tenant_id).decompress,
                                          activities)

    @staticmethod
    def _event_query(tenant_id: str, kind: str, start: datetime | None, end: datetime | None, *columns):
        query = select(*columns).where(event_table.c.tenant_id == tenant_id, event_table.c.kind == kind)
        if start is not None:
            query = query.where(event_table.c.occurred_at >= start)
        if end is not None:
            query = query.where(event_table.c.occurred_at < end)
        return query

    def audit_activities(self, tenant_id: str, start: datetime | None = None, end: datetime | None = None,
                         contains: str = "(PIM activation)", data_when: str = "completed"
                         ) -> Iterator[tuple[str, str, str, str, str | None]]:
        """(correlation id, source id, time, activity, stored JSON or None) of each audit event in [start, end)
        with a correlation id whose activity holds `contains` (letter case ignored), streamed in no
        particular order; the stored JSON comes only with activities holding `data_when`.

        The activity is cut from the stored text (`pimtrail.activations.activity_of`: canonical JSON begins
        `{"activity":"...",`), nothing else is decoded. `time` is the event's `occurred_at` to the second
        (`YYYY-MM-DDTHH:MM:SSZ`, as the audit normaliser writes the event's time and `fold_stored` reads it)."""
        from pimtrail.activations import activity_of

        wanted, with_data = contains.lower(), data_when.lower()
        query = self._event_query(tenant_id, "audit", start, end, event_table.c.correlation_id,
                                  event_table.c.source_id, event_table.c.occurred_at, event_table.c.zdata).where(
            event_table.c.correlation_id.is_not(None))
        with self._reading() as conn:
            decompress = _earc.passing(Codec.load(conn, tenant_id).decompress)
            archived = ((e.correlation_id, e.source_id, e.occurred_at, e.text)
                        for e in _earc.read(conn, tenant_id, "audit", start, end) if e.correlation_id is not None)
            for correlation, source, occurred_at, zdata in itertools.chain(
                    archived, conn.execution_options(yield_per=5000).execute(query)):
                data = decompress(zdata)
                act = activity_of(data) or ""
                low = act.lower()
                if wanted in low:
                    yield correlation, source, iso(occurred_at), act, data if with_data in low else None

    def activation_hours(self, tenant_id: str, since: datetime, until: datetime, low: datetime, high: datetime,
                         seconds_of: Iterable[str] | None = None
                         ) -> tuple[list[tuple[str, int, int, int]], list[tuple[str, datetime, datetime]]]:
        """The activations `outline_activations` makes of the audit events in [since, until), requested (else
        started) in [low, high), counted from the `activation` rows (ix_activation_asked): (hour
        `YYYY-MM-DD HH` of their start, else request; activations; approved; denied). `seconds_of`: only
        the activations placed in these hours, per second (`YYYY-MM-DD HH:MM:SS`) instead of per hour.
        Only rows whose events all fall in [since, until) are counted:
        those are what the events in it make of them. Also (correlation id, first_at, last_at) of the
        activations with events on both sides of `since` or of `until`: the caller folds their events."""
        sqlite = self.engine.dialect.name == "sqlite"
        hour, second = ("substr(at, 1, 13)", "substr(at, 1, 19)") if sqlite else \
            ("to_char(at, 'YYYY-MM-DD HH24')", "to_char(at, 'YYYY-MM-DD HH24:MI:SS')")
        hours = None if seconds_of is None else sorted(set(seconds_of))

        def bound(when: datetime) -> Any:  # SQLite keeps DateTime as text: compared as SQLAlchemy writes it
            return time_param(sqlite, when)

        only = "" if hours is None else f" AND {hour} IN ({','.join('?' * len(hours))})"
        with self.engine.connect() as conn:
            counted = [] if hours == [] else _receipts.raw_rows(
                conn, f"SELECT {hour if hours is None else second} AS h, count(*), "
                      "sum(CASE WHEN approved THEN 1 ELSE 0 END), sum(CASE WHEN denied THEN 1 ELSE 0 END) "
                      "FROM activation WHERE tenant_id = ? AND asked >= ? AND asked < ? AND first_at >= ? "
                      f"AND last_at < ?{only} GROUP BY h",
                (tenant_id, bound(low), bound(high), bound(since), bound(until), *(hours or ())))
            across = conn.execute(select(activation_table.c.correlation_id, activation_table.c.first_at,
                                         activation_table.c.last_at).where(
                activation_table.c.tenant_id == tenant_id, activation_table.c.first_at < until,
                activation_table.c.last_at >= since,
                or_(activation_table.c.first_at < since, activation_table.c.last_at >= until))).all()
        return [(h, n, a, d) for h, n, a, d in counted], [tuple(r) for r in across]

    def joined_activations(self, tenant_id: str, since: datetime, until: datetime
                           ) -> tuple[list[Activation], set[str]]:
        """The activations whose audit events all lie in [since, until), as the ingest joined them from their
        events (`activation.joined`, `pimtrail.store.joined`), in no particular order; and the correlation
        ids of those with events in [since, until) and outside it, or with no stored join: to be joined from
        the events in [since, until)."""
        from pimtrail.store import joined

        with self.engine.connect() as conn:
            return joined.whole_in(conn, tenant_id, since, until, Codec.load(conn, tenant_id).decompress)

    def activation_events(self, tenant_id: str, since: datetime, until: datetime,
                          activations: Iterable[tuple[str, datetime, datetime]]
                          ) -> list[tuple[str, str, str, str, str | None]]:
        """`audit_activities` rows of the audit events in [since, until) of some activations, given as
        (correlation id, first_at, last_at): read from where their events can be (those reaching back before
        `since` up to the last of them, the others from the first), decoded whole."""
        activations = list(activations)
        wanted = {c for c, _, _ in activations}
        before = [last for _, first, last in activations if first < since]
        after = [first for _, first, _ in activations if first >= since]
        spans = ([(since, min(until, max(before) + timedelta(microseconds=1)))] if before else []) + \
            ([(min(after), until)] if after else [])
        found: list = []
        with self._reading() as conn:
            decompress = _earc.passing(Codec.load(conn, tenant_id).decompress)
            for start, end in spans:
                query = self._event_query(tenant_id, "audit", start, end, event_table.c.correlation_id,
                                          event_table.c.source_id, event_table.c.occurred_at, event_table.c.zdata)
                found += [(e.correlation_id, e.source_id, e.occurred_at, e.text)
                          for e in _earc.read(conn, tenant_id, "audit", start, end) if e.correlation_id in wanted]
                found += self._filtered(query, wanted, None, event_table.c.correlation_id, conn=conn)
        out = []
        for correlation, source, occurred_at, zdata in found:
            data = decompress(zdata)
            act = json.loads(data).get("activity") or ""  # the time to the second, as the `activation` rows
            out.append((correlation, source, iso(occurred_at), act, data if "completed" in act.lower() else None))
        return out
