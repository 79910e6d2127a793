"""Activations joined at ingest (`activation.joined`, migration 0007): each activation as `join_activations`
makes it of all its stored audit events, kept beside the fold the trend counts (`activation.state`).

A view's period holds ~20,000 activations made of ~43,000 audit events on a large tenant; joining them from
the events (decompressing and decoding each) was most of building a view. The events of an activation
arrive once (a later collection brings only events it had not), so its join changes only when one of its
events arrives: the ingest joins again the activations the new events belong to, from their earlier events
read back and the new ones. A view takes the stored join of an activation whose events all lie in its
events' window, and joins the others (events on both sides of it) from the window's events, as before.

Stored as the Activation's fields after its correlation id, in order, as compact JSON in a zstd frame made
with the tenant's event dictionary (`eventdata.Codec`): ~180 bytes an activation. Not hashed: `verify` joins
the events again and compares, as it folds them again for `state`.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import fields
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from pimtrail.activations import (Activation, ActivationJoin, activity_kind, activity_of, decode_for_join,
                                  join_activations, joinable)
from pimtrail.errors import HistoryError
from pimtrail.store.hashing import compact

if TYPE_CHECKING:  # the history's modules are imported where it is read: a worker joining a first snapshot does without
    from sqlalchemy.engine import Connection

FIELDS = tuple(f.name for f in fields(Activation))[1:]  # after correlation_id
_FIELDS = attrgetter(*FIELDS)


def encode(act: Activation) -> str:
    # its fields after the correlation id, as `astuple` gives them (no field is a dataclass), without the
    # deep copy astuple makes of each: 1.5 s of a large first ingest's 58,000 activations
    return compact(list(_FIELDS(act)))


def decode(correlation: str, text: str) -> Activation:
    values = json.loads(text)
    if not isinstance(values, list) or len(values) != len(FIELDS):
        raise HistoryError(f"activation {correlation}: its stored join is not {len(FIELDS)} fields (run pimtrail verify)")
    return Activation(correlation, *values)


def _ordered(conn: Connection, tenant: str, kind: str, since: datetime | None = None, until: datetime | None = None,
             *, through: bool = False, before_seq: int | None = None, correlated: bool = False,
             archive: str = "all") -> Iterator[tuple]:
    """(occurred_at as the driver gives it, source id, correlation id, zdata) of a tenant's events of one kind in
    [since, until) (`through`: [since, until]), brought by snapshots before `before_seq`, only those with a
    correlation id when `correlated`; by time then source id (code-point order on both backends). The archived
    days come first (`archive`: "all"; "readable", those that read, for `verify`, which counts the others;
    "none", for a migration before 0009), with their texts in place of zdata (`event_archive.passing` reads
    both); the rows through the driver: SQLAlchemy's per-row processing of a month's 64,000 audit events costs
    more than the read."""
    from pimtrail.store.event_archive import read as archived
    from pimtrail.store.receipts import _sql, db_time

    for e in () if archive == "none" else archived(conn, tenant, kind, since, until, through=through,
                                                   readable=archive == "readable"):
        if (before_seq is None or e.first_seen < before_seq) and (not correlated or e.correlation_id is not None):
            yield e.occurred_at, e.source_id, e.correlation_id, e.text
    where, params = ["correlation_id IS NOT NULL"] if correlated else [], []
    for clause, value in (("occurred_at >= ?", since), ("occurred_at <= ?" if through else "occurred_at < ?", until),
                          ("first_seen < ?", before_seq)):
        if value is not None:
            where.append(clause)
            params.append(db_time(conn, value) if isinstance(value, datetime) else value)
    order = 'source_id COLLATE "C"' if conn.dialect.name == "postgresql" else "source_id"
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(_sql(conn, "SELECT occurred_at, source_id, correlation_id, zdata FROM event WHERE tenant_id = ? "
                                  f"AND kind = ?{''.join(' AND ' + w for w in where)} ORDER BY occurred_at, {order}"),
                       (tenant, kind, *params))
        while rows := cursor.fetchmany(2000):
            yield from rows
    finally:
        cursor.close()


def event_texts(conn: Connection, tenant: str, kind: str, start: datetime, end: datetime,
                decompress: Callable[[bytes], str], activities: Iterable[str]
                ) -> Iterator[tuple[str, str | None, str, str]]:
    """`HistoryStore.event_texts`."""
    from pimtrail.store.event_archive import passing

    wanted = [text.lower() for text in activities]
    decompress = passing(decompress)
    for _, source_id, correlation, zdata in _ordered(conn, tenant, kind, start, end):
        text = decompress(zdata)
        activity = activity_of(text)
        if activity is not None:
            low = activity.lower()
            for w in wanted:
                if w in low:
                    yield source_id, correlation, activity, text
                    break


def stored_events(conn: Connection, tenant: str, decompress: Callable[[bytes], str], since: datetime | None = None,
                  until: datetime | None = None, correlations: set[str] | None = None, before_seq: int | None = None,
                  archive: str = "all") -> Iterator[tuple[datetime | str, str, dict[str, Any]]]:
    """(occurred_at as the driver gives it, source id, event decoded for the join) of the stored audit events of
    PIM activations (an activity `activity_kind` names) with a correlation id, in [since, until] when given,
    of some correlation ids and brought by snapshots before `before_seq` when given; by time, then source id."""
    from pimtrail.store.event_archive import passing

    decompress = passing(decompress)
    for occurred_at, source_id, correlation, zdata in _ordered(conn, tenant, "audit", since, until, through=True,
                                                                before_seq=before_seq, correlated=True,
                                                                archive=archive):
        if correlations is not None and correlation not in correlations:
            continue
        text = decompress(zdata)
        if activity_kind(activity_of(text) or "") is not None:
            yield occurred_at, source_id, decode_for_join(text)


def whole_in(conn: Connection, tenant: str, since: datetime, until: datetime, decompress: Callable[[bytes], str]
             ) -> tuple[list[Activation], set[str]]:
    """`HistoryStore.joined_activations`."""
    from pimtrail.store.receipts import db_time, raw_rows

    low, high = db_time(conn, since), db_time(conn, until)  # compared as stored (SQLite: as text)
    whole, others = [], set()
    for correlation, first_at, last_at, stored in raw_rows(
            conn, "SELECT correlation_id, first_at, last_at, joined FROM activation WHERE tenant_id = ? "
                  "AND first_at < ? AND last_at >= ?", (tenant, high, low)):
        if stored is not None and first_at >= low and last_at < high:
            whole.append(decode(correlation, decompress(bytes(stored))))
        else:
            others.add(correlation)
    return whole, others


def join_in_order(events: Iterable[dict[str, Any]], again: Callable[[set[str]], Iterable[dict[str, Any]]]
                  ) -> dict[str, Activation]:
    """Correlation id -> activation, joined from `events` as they come (each activation's in (time, id)
    order); an activation whose events come otherwise is joined from `again(its correlation ids)`, sorted."""
    join, disordered = ActivationJoin(), set()
    for event in events:
        if not join.add(event):
            disordered.add(event["correlation_id"])
    return _joined(join, disordered, again)


def _joined(join: ActivationJoin, disordered: set[str], again: Callable[[set[str]], Iterable[dict[str, Any]]]
            ) -> dict[str, Activation]:
    """`join_in_order`'s value once `join` took the events (`disordered`: the activations `add` refused one of)."""
    out = {a.correlation_id: a for a in join.finished()}
    if disordered:
        for act in join_activations(e for e in again(disordered) if e.get("correlation_id") in disordered):
            out[act.correlation_id] = act
    return out


def join_all(conn: Connection, tenant: str, decompress: Callable[[bytes], str], archive: str = "all"
             ) -> dict[str, Activation]:
    """Every activation of a tenant joined from all its stored audit events (`verify`; migration 0007, before
    there is an archive, reads the rows only). `archive` as `_ordered` takes it."""
    return join_in_order((e for _, _, e in stored_events(conn, tenant, decompress, archive=archive)),
                         lambda ids: [e for _, _, e in stored_events(conn, tenant, decompress, correlations=ids,
                                                                     archive=archive)])


def join_touched(conn: Connection | None, tenant: str, seq: int, decompress: Callable[[bytes], str],
                 new: list[tuple[str, str, datetime, str, dict[str, Any], str]],
                 spans: Iterable[tuple[datetime, datetime]]
                 ) -> dict[str, Activation]:
    """The activations some new audit events belong to (`new`: (correlation id, source id, occurred_at, stored
    text, the dict it encodes, its `activity_kind`) of the events of activations snapshot `seq` brings, not stored
    before it), joined from those and their earlier stored events (read from within `spans`, the activations'
    (first_at, last_at)); `seq` is not the tenant's first (`join_first` joins that one). Each event as stored, as
    a view would read it: its canonical text decoded, or the dict it was encoded from as that would read
    (`joinable`; only a completion's details are read, so only a completion's dict is checked)."""
    fresh = _fresh(new)
    touched = {correlation for correlation, *_ in new}
    spans = list(spans)
    earlier: Iterable[tuple[Any, str, dict[str, Any]]] = ()
    if spans:
        from pimtrail.store.event_archive import naive

        earlier = ((naive(at), source, e) for at, source, e in stored_events(
            conn, tenant, decompress, min(s for s, _ in spans), max(e for _, e in spans), touched, before_seq=seq))
    events = heapq.merge(earlier, fresh, key=lambda e: (e[0], e[1]))
    return join_in_order(map(itemgetter(2), events),
                         lambda ids: [e for _, _, e in stored_events(conn, tenant, decompress, correlations=ids)])


def _fresh(new: list[tuple[str, str, datetime, str, dict[str, Any], str]]) -> list[tuple]:
    """(occurred_at, source id, the event as the join reads it, correlation id, stored text, kind) of `new` (as
    `join_touched` takes them), by time and source id."""
    return sorted(((at, source, joinable(data, text) if kind == "completed" else data, correlation, text, kind)
                   for correlation, source, at, text, data, kind in new), key=itemgetter(0, 1))


def join_first(new: list[tuple[str, str, datetime, str, dict[str, Any], str]]
               ) -> tuple[dict[str, Activation], dict[str, list]]:
    """`join_touched` of a tenant's first snapshot (its `new` events are all there are), and their fold in the same
    pass (`fold_kind`'s slots, as `newacts.activation_rows` folds new events): taking the events in order, the join
    finds each completion's start, which the fold would find again in the event's text (`fold`'s `started`; 0.4 s of
    the large first snapshot's 57,000 completions). Only where the join read it as the fold would: the event taken in
    order, of the activation the fold puts it in, its time the fold's (`iso(occurred_at)`, which a start not in
    its details falls back to); else the fold reads the text."""
    from pimtrail.activations import fold_kind

    fresh = _fresh(new)
    join, disordered, slots = ActivationJoin(), set(), {}
    for at, source, event, correlation, text, kind in fresh:
        added = join.add(event, kind)
        if not added:
            disordered.add(event["correlation_id"])
        started, when = None, at.isoformat(timespec="seconds") + "Z"  # iso(at), as the fold takes it
        if added and kind == "completed" and event.get("correlation_id") == correlation and event["time"] == when:
            started = join.start_of(correlation)
        fold_kind(slots, correlation, source, at, text, kind, started=started, when=when)
    return _joined(join, disordered, lambda ids: list(map(itemgetter(2), fresh))), slots
