"""The `activation` rows that new audit events make (`appending.append_events`, and a first snapshot's worker,
`appending.prepare_audit`): the activations they belong to folded on from their stored rows and joined again from
all their events, as column values ready to insert or update."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pimtrail.store.eventdata import Codec
from pimtrail.timeutil import is_canonical, parse_iso

if TYPE_CHECKING:  # as in `appending`: the worker starts without SQLAlchemy
    from sqlalchemy.engine import Connection


def activation_rows(conn: Connection | None, tenant: str, seq: int, audit: list, codec: Codec, sqlite: bool
                    ) -> tuple[list[tuple], list[tuple]]:
    """(rows of stored activations to update, new rows) for the activations the new `audit` events belong to:
    folded on from their stored rows, as if from all their events (`verify` folds all of them and compares),
    and each joined again from all its events (`activation.joined`, what a view reads). `conn` None: the
    tenant's first snapshot, nothing stored to read."""
    from pimtrail.activations import activation_row, activation_texts, activity_kind, activity_value, fold_kind
    from pimtrail.activations import stored_slot
    from pimtrail.store import joined as _joined

    # the events of activations, each with its kind (found once: folding and joining both need it), from the
    # activity of the dict each text encodes (`activity_of` reads it from the text)
    events = [(*a, kind) for a in audit
              if (kind := activity_kind(activity_value(a[4].get("activity")) or "")) is not None]
    stored: dict[str, list] = {}
    if seq == 1:  # the tenant's first snapshot: its events are all there are, folded as they are joined
        joins, fresh = _joined.join_first(events)
    else:
        fresh = {}
        for correlation, source, occurred_at, text, _, kind in events:
            fold_kind(fresh, correlation, source, occurred_at, text, kind)
        if conn is not None:
            from sqlalchemy import select

            from pimtrail.store.ingest import chunks
            from pimtrail.store.schema import activation_table as act

            for part in chunks(sorted(fresh), 500):
                for correlation, first_at, last_at, state in conn.execute(
                        select(act.c.correlation_id, act.c.first_at, act.c.last_at, act.c.state).where(
                            act.c.tenant_id == tenant, act.c.correlation_id.in_(part))):
                    stored[correlation] = stored_slot(first_at, last_at, state)
        for correlation, source, occurred_at, text, _, kind in events:
            if correlation in stored:
                fold_kind(stored, correlation, source, occurred_at, text, kind)
        joins = _joined.join_touched(conn, tenant, seq, codec.decompress, events,
                                     [(slot[0], slot[1]) for slot in stored.values()])

    def values(correlation: str, slot: list) -> list:  # ACTIVATION_COLUMNS; datetimes as time_param gives them
        joined = joins.get(correlation)
        if sqlite:  # isoformat: faster than time_param
            row = activation_texts(slot)
            times = [None if t is None else t.isoformat(" ", "microseconds") for t in (row["first_at"], row["last_at"])]
            times += [_sqlite_time(row["at"]), _sqlite_time(row["asked"])]
        else:
            row = activation_row(slot)
            times = [row["first_at"], row["last_at"], row["at"], row["asked"]]
        return [*times, row["approved"], row["denied"], row["state"],
                None if joined is None else codec.compress(_joined.encode(joined))]

    updated = [(*values(c, slot), tenant, c) for c, slot in stored.items()]
    new = [(tenant, c, *values(c, slot)) for c, slot in fresh.items() if c not in stored]
    # by `asked` (their events came newest first): ix_activation_asked is then filled at its end
    new.sort(key=lambda r: (r[5] is None, r[5] if r[5] is not None else r[2], r[1]))
    return updated, new


def _sqlite_time(text: str | None) -> str | None:
    """`parse_iso(text).isoformat(" ", "microseconds")` of an activation's time (`activation_texts`), as the rows
    are written into SQLite, without parsing it when it is canonical: a time the fold took from a parsed moment
    (`pimtrail.activations.fold`), so a real one; or one the ingest reads back from the row it wrote."""
    if text is None:
        return None
    if is_canonical(text):
        return f"{text[:10]} {text[11:19]}.000000"
    return parse_iso(text).isoformat(" ", "microseconds")
