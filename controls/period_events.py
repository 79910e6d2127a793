"""The audit events of an evaluation period as a view keeps them: activations joined from their
events (request, approval, activation, end), and the events of assignments made outside PIM.

A quarter of a large tenant holds ~124,000 PIM-activation events. They are read in the store's order
(time, then source id) and each is joined into its activation as it comes (`ActivationJoin`), so only
the activations are held, never the events; the store decodes only the events whose activity names a
PIM activation or an assignment outside PIM (`HistoryStore.iter_events(activities=...)`). The join
wants each activation's events in (time, id) order: the store's order is that one whenever an event's
`time` is its `occurred_at` to the second, as the audit normaliser writes it. An activation whose events
come otherwise is joined again from its events read and sorted (tests/test_pack_memory.py compares the
result with the plain join).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from pimtrail.activations import Activation, ActivationJoin, decode_for_join, join_activations
from pimtrail.store import HistoryStore

ACTIVATION_TEXT, OUTSIDE_PIM_TEXT = "(PIM activation)", "outside of PIM"


def period_activations(store: HistoryStore, tenant: str, start: datetime, end: datetime) -> tuple[list[Activation], list[dict]]:
    """What a view keeps of the period's audit events: the activations requested (else started) in
    [start, end), joined from the events since a day before it, and the events of assignments made
    outside PIM (read whole by controls)."""
    since = start - timedelta(days=1)
    join, audit, again = ActivationJoin(), [], set()
    for source_id, activity, text in store.event_texts(tenant, "audit", since, end, (ACTIVATION_TEXT, OUTSIDE_PIM_TEXT)):
        activity = activity.lower()
        if "outside of pim" in activity:
            event = json.loads(text)
            event["_source_id"] = source_id
            if start <= event_time(event["time"]) < end:
                audit.append(event)
        else:
            event = decode_for_join(text)
        if "(pim activation)" in activity and not join.add(event):
            again.add(event["correlation_id"])
    joined = join.activations()
    if again:  # out of (time, id) order: these activations joined from their events sorted
        joined = [a for a in joined if a.correlation_id not in again] + join_activations(
            e for e in store.events(tenant, "audit", since, end, correlation_ids=again)
            if "(pim activation)" in activity_of(e))
        joined.sort(key=lambda a: (a.requested_at or a.start or "", a.correlation_id))  # join_activations' order
    return [a for a in joined if start <= event_time(a.requested_at or a.start) < end], audit


def activity_of(event: dict[str, Any]) -> str:
    return (event.get("activity") or "").lower()


_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def event_time(value: str | None) -> datetime:
    """An event time as naive UTC; stored times are canonical (`...T01:27:00Z`), read without parse_iso."""
    if not value:
        return datetime.min
    if len(value) == 20 and _CANONICAL.fullmatch(value):
        return datetime(int(value[:4]), int(value[5:7]), int(value[8:10]), int(value[11:13]), int(value[14:16]),
                        int(value[17:19]))
    from pimtrail.timeutil import parse_iso

    return parse_iso(value)
