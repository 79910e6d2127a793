"""The audit events of an evaluation period as a view keeps them: activations joined from their
events (request, approval, activation, end), and the events of assignments made outside PIM.

An activation whose events all lie in the period's window (a day before the period to its end) is taken
as the ingest joined it from all its events (`activation.joined`, `pimtrail/store/joined.py`): a month of
a large tenant is ~20,000 activations made of ~43,000 events, which are then neither decompressed nor
decoded for it. Only the activations the window's edges cut through are joined from the window's events,
each joined as it comes (`ActivationJoin`) in the store's order (time, then source id): that is the join's
(time, id) order whenever an event's `time` is its `occurred_at` to the second, as the audit normaliser
writes it; an activation whose events come otherwise is joined again from its events read and sorted.
Every event of the window is still decompressed to find the assignments made outside PIM (decoded only
when their activity names one). tests/test_pack_memory.py and tests/test_period_events.py compare the
result with the plain join of the window's events.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Iterator

from pimtrail.activations import Activation, decode_for_join
from pimtrail.store import HistoryStore
from pimtrail.store.joined import join_in_order
from pimtrail.timeutil import parse_iso

ACTIVATION_TEXT, OUTSIDE_PIM_TEXT = "(PIM activation)", "outside of PIM"


def period_activations(store: HistoryStore, tenant: str, start: datetime, end: datetime) -> tuple[list[Activation], list[dict]]:
    """What a view keeps of the period's audit events: the activations requested (else started) in
    [start, end), joined from the events since a day before it, and the events of assignments made
    outside PIM (read whole by controls)."""
    since = start - timedelta(days=1)
    joined, _ = store.joined_activations(tenant, since, end)
    whole = {a.correlation_id for a in joined}  # the others (cut by the window's edges, or with no stored join
    audit: list[dict] = []                     # or row) are joined from the window's events

    def to_join() -> Iterator[dict[str, Any]]:
        for source_id, correlation, activity, text in store.event_texts(tenant, "audit", since, end,
                                                                        (ACTIVATION_TEXT, OUTSIDE_PIM_TEXT)):
            activity = activity.lower()
            event = None
            if "outside of pim" in activity:
                event = json.loads(text)
                event["_source_id"] = source_id
                if start <= event_time(event["time"]) < end:
                    audit.append(event)
            if "(pim activation)" in activity and correlation not in whole:
                event = event or decode_for_join(text)
                if event.get("correlation_id") not in whole:
                    yield event

    def again(ids: set[str]) -> list[dict[str, Any]]:  # out of (time, id) order: joined from their events sorted
        return [e for e in store.events(tenant, "audit", since, end, correlation_ids=ids)
                if "(pim activation)" in activity_of(e)]

    joined += join_in_order(to_join(), again).values()
    joined.sort(key=lambda a: (a.requested_at or a.start or "", a.correlation_id))  # join_activations' order
    return [a for a in joined if start <= event_time(a.requested_at or a.start) < end], audit


def activity_of(event: dict[str, Any]) -> str:
    return (event.get("activity") or "").lower()


def event_time(value: str | None) -> datetime:
    """An event time as naive UTC (stored times are canonical, `...T01:27:00Z`: parse_iso reads them quickly)."""
    return parse_iso(value) if value else datetime.min
