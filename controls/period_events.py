"""The audit events of an evaluation period as a view keeps them: activations joined from their
events (request, approval, activation, end), and the events of assignments made outside PIM.

A quarter of a large tenant holds ~124,000 PIM-activation events; held as dicts with their nested
dicts until joined they peak at ~300 MB. Here each is a tuple of the fields the join reads (equal
strings and actors shared, of the details only the start and end), and the events are joined a
share of the correlation ids at a time (all events of one correlation id are in one share), ~90 MB.
tests/test_pack_memory.py compares the result with the plain join.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pimtrail.activations import END_KEYS, START_KEYS, Activation, join_activations
from pimtrail.store import HistoryStore

ACTIVATION_TEXT, OUTSIDE_PIM_TEXT = "(PIM activation)", "outside of PIM"
# what the join reads of an event
JOINED_FIELDS = ("activity", "category", "correlation_id", "details", "group_id", "id", "initiated_by", "principal",
                 "result", "result_reason", "role_id", "role_name", "time")  # what join_activations reads

BUCKETS = 8  # shares of the correlation ids joined one at a time
_ABSENT = object()


def period_activations(store: HistoryStore, tenant: str, start: datetime, end: datetime) -> tuple[list[Activation], list[dict]]:
    """What a view keeps of the period's audit events: the activations requested (else started) in
    [start, end), joined from the events since a day before it, and the events of assignments made
    outside PIM (read whole by controls)."""
    fields, dated = JOINED_FIELDS, set(START_KEYS + END_KEYS)
    at_correlation = fields.index("correlation_id")
    at_details = fields.index("details") if "details" in fields else None
    actors = [fields.index(k) for k in ("initiated_by", "principal") if k in fields]
    texts = [n for n, k in enumerate(fields) if k not in ("id", "details", "initiated_by", "principal")]
    shared: dict[Any, Any] = {}  # one object for equal texts and equal actors ({id, upn, name, type})
    keep = shared.setdefault

    def compact(event: dict[str, Any]) -> tuple:
        get = event.get
        values = [get(k, _ABSENT) for k in fields]
        for n in texts:
            if type(values[n]) is str:
                values[n] = keep(values[n], values[n])
        for n in actors:
            if type(values[n]) is dict:
                try:
                    values[n] = keep(tuple(values[n].items()), values[n])
                except TypeError:  # holds something unhashable: kept as it is
                    pass
        if at_details is not None and type(values[at_details]) is dict:  # the join reads only its start and end
            values[at_details] = tuple(x for item in values[at_details].items() if item[0].lower() in dated
                                       for x in item)
        return tuple(values)

    def expand(values: tuple) -> dict[str, Any]:
        event = dict(zip(fields, values))
        if _ABSENT in values:  # a key the event did not have
            event = {k: value for k, value in event.items() if value is not _ABSENT}
        if at_details is not None and type(values[at_details]) is tuple:
            event["details"] = dict(zip(values[at_details][::2], values[at_details][1::2]))
        return event

    buckets: list[list[tuple]] = [[] for _ in range(BUCKETS)]
    audit = []
    for event in store.iter_events(tenant, "audit", start - timedelta(days=1), end,
                                   contains=(ACTIVATION_TEXT, OUTSIDE_PIM_TEXT)):
        activity = activity_of(event)
        if "outside of pim" in activity and start <= event_time(event["time"]) < end:
            audit.append(event)
        if "(pim activation)" in activity:
            values = compact(event)
            buckets[hash(values[at_correlation]) % BUCKETS].append(values)
    shared.clear()
    joined = []
    for n in range(BUCKETS):  # all the events of a correlation id are in one bucket: joined as in one list
        events, buckets[n] = [expand(values) for values in buckets[n]], []
        joined += join_activations(events)
        del events
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
