"""Activations joined with their approvals from stored audit events.

Graph gives no app-only read of approvals; the audit log does: PIM writes `... requested`,
`... request approved/denied` and `... completed (PIM activation)` entries that share a
`correlationId`. The join runs on stored events, so an activation whose request and completion
arrived in different (overlapping) collections is still whole.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Iterable

from pimtrail.store.hashing import compact
from pimtrail.timeutil import is_canonical, iso, parse_canonical, parse_iso

START_KEYS = ("starttime", "startdatetime", "start time")
END_KEYS = ("expirationtime", "enddatetime", "endtime", "expiration time")


def _detail(details: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for key, value in details.items():
        if key.lower() in names and value:
            return _when(value)[0]
    return None


def _when(value: Any) -> tuple[str | None, datetime | None]:
    """What `_detail` makes of the value it found (None: not a moment), and that moment when the value
    was canonical already (iso(parse_iso(text)) == text once it is a real moment)."""
    text = str(value)
    try:
        if is_canonical(text):
            return text, parse_canonical(text)
        return iso(parse_iso(text)), None
    except ValueError:
        return None, None


@dataclass
class Activation:
    correlation_id: str
    scope: str  # role / group
    principal_id: str | None = None
    principal_name: str | None = None
    role_id: str | None = None
    role_name: str | None = None
    group_id: str | None = None
    requested_at: str | None = None
    justification: str | None = None
    approval: str = "not required"  # not required / approved / denied / pending
    approvers: list[dict[str, Any]] = field(default_factory=list)
    self_approved: bool = False
    start: str | None = None
    end: str | None = None
    duration_hours: float | None = None
    outcome: str = "requested"  # requested / denied / activated / failed
    events: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kind(activity: str) -> str | None:
    text = activity.lower()
    if "(pim activation)" not in text:
        return None
    if "approved" in text:
        return "approved"
    if "denied" in text:
        return "denied"
    if "completed" in text:
        return "completed"
    if "requested" in text:
        return "requested"
    return None


_KINDS: dict[str, str | None] = {}  # activity -> _kind(activity): a year's audit log holds a few dozen


def activity_kind(activity: str) -> str | None:
    """`_kind`, remembered per activity text (bounded, whatever the log holds)."""
    kind = _KINDS.get(activity, "?")
    if kind == "?":
        kind = _kind(activity)
        if len(_KINDS) < 10_000:
            _KINDS[activity] = kind
    return kind


def join_activations(audit_events: Iterable[dict[str, Any]]) -> list[Activation]:
    join = ActivationJoin()
    for ev in sorted(audit_events, key=lambda e: (e["time"], e["id"])):
        join.add(ev)
    return join.activations()


class ActivationJoin:
    """`join_activations` one event at a time, holding the activations and not the events. Each
    activation's events must come in (time, id) order: `add` tells (False) of an event that comes before
    one its activation already had, and the caller joins that activation again from its events sorted."""

    def __init__(self) -> None:
        self._acts: dict[str, Activation] = {}
        self._last: dict[str, tuple[str, str]] = {}  # correlation id -> (time, id) of its latest event
        self._moments: dict[str, tuple[datetime | None, datetime | None]] = {}  # start, end as parsed, when canonical

    def add(self, ev: dict[str, Any], kind: str | None = None) -> bool:
        """Take one event (`kind`: its `activity_kind` when the caller found it, not None)."""
        if kind is None:
            kind = activity_kind(ev.get("activity") or "")
        correlation = ev.get("correlation_id")
        if kind is None or not correlation:
            return True
        time, key = ev["time"], (ev["time"], ev["id"])
        act = self._acts.get(correlation)
        if act is None:
            act = self._acts[correlation] = Activation(
                correlation, "group" if ev.get("category") == "GroupManagement" else "role")
        elif key < self._last[correlation]:
            return False
        self._last[correlation] = key
        act.events.append(ev["id"])
        act.role_id = act.role_id or ev.get("role_id")
        act.role_name = act.role_name or ev.get("role_name")
        act.group_id = act.group_id or ev.get("group_id")
        if kind == "requested" or kind == "completed":
            if not (act.principal_id and act.principal_name):
                principal = ev.get("principal") or {}
                requester = ev.get("initiated_by") or {}
                act.principal_id = act.principal_id or principal.get("id") or requester.get("id")
                act.principal_name = act.principal_name or principal.get("upn") or principal.get("name") \
                    or requester.get("upn")
            if kind == "requested":
                act.requested_at = time
                act.justification = ev.get("result_reason") or act.justification
            else:
                # _detail(details, START_KEYS) and (.., END_KEYS) of the details in key order, as canonical JSON
                # sorts them, in one pass over them in any order: of the names that match, the least wins
                start = end = start_name = end_name = None
                for name, value in (ev.get("details") or {}).items():
                    if value:
                        low = name.lower()
                        if low in START_KEYS:
                            if start_name is None or name < start_name:
                                start, start_name = value, name
                        elif low in END_KEYS and (end_name is None or name < end_name):
                            end, end_name = value, name
                start, began = _when(start) if start is not None else (None, None)
                act.end, ended = _when(end) if end is not None else (None, None)
                act.start = start or time
                self._moments[correlation] = (began if start else None, ended)
                act.outcome = "activated" if (ev.get("result") or "success").lower() == "success" else "failed"
                act.justification = act.justification or ev.get("result_reason")
        else:  # approved / denied
            approver = ev.get("initiated_by") or {}
            act.approvers.append({"id": approver.get("id"), "upn": approver.get("upn"), "decision": kind,
                                  "time": time})
            act.approval = kind
            if kind == "denied":
                act.outcome = "denied"
        return True

    def start_of(self, correlation: str) -> str | None:
        """The start of activation `correlation` as joined so far: right after `add` took a completion of it, that
        completion's (`_detail(details, START_KEYS) or time` of its dict: what `fold` finds in its text when the
        fold's time is the dict's)."""
        act = self._acts.get(correlation)
        return None if act is None else act.start

    def activations(self) -> list[Activation]:
        """The activations joined so far, finished, in `join_activations`' order."""
        return sorted(self.finished(), key=lambda a: (a.requested_at or a.start or "", a.correlation_id))

    def finished(self) -> Iterable[Activation]:
        """The activations joined so far, finished, in the order of their first events."""
        for act in self._acts.values():
            requester = act.principal_id
            act.self_approved = any(a["id"] and a["id"] == requester and a["decision"] == "approved"
                                    for a in act.approvers)
            if act.start and act.end:
                began, ended = self._moments.get(act.correlation_id, (None, None))
                act.duration_hours = round(((ended or parse_iso(act.end)) - (began or parse_iso(act.start)))
                                           .total_seconds() / 3600, 2)
        return self._acts.values()


def joinable(data: dict[str, Any], text: str) -> dict[str, Any]:
    """An audit event's dict as `ActivationJoin` would read it decoded from `text`, its canonical JSON: the same
    values (`add` reads `details` in any order as canonical JSON sorts them). JSON turns a key that is not a string
    (a detail named 7) into one, so such a dict is read from its text after all."""
    details = data.get("details")
    if type(details) is dict and details and not all(type(name) is str for name in details):
        return decode_for_join(text)
    return data


def decode_for_join(text: str) -> dict[str, Any]:
    """A stored audit event (its canonical JSON text) decoded for `ActivationJoin`: without its `targets`,
    a third of the text and never read by the join, when the text ends `...,"targets":[...],"time":"..."}`
    (as the audit normaliser writes every event); else whole.

    The final `"time"` is then a member of the outermost object, and the `]` before it closes the value of
    the member before it. The text cut from `,"targets":[` (its last occurrence before) to that `]` is JSON
    only if that comma too is the outermost object's (else the cut leaves containers open that nothing
    closes): then whole members went, from "targets" up to "time" in key order (canonical JSON sorts them),
    and no field the join reads sorts there."""
    end = text.rfind('],"time":"')
    if end > 0 and text.endswith('"}') and text.find('"', end + 10) == len(text) - 2:
        begin = text.rfind(',"targets":[', 0, end)
        if begin > 0:
            try:
                event = json.loads(text[:begin] + text[end + 1:])
            except ValueError:
                event = None
            if type(event) is dict:
                return event
    return json.loads(text)


# -- the trend's weekly counts: activations folded from a year of audit events ---------------------
@dataclass(slots=True)
class Outline:
    """What the weekly activation counts need of one activation. Equal to the joined `Activation`'s
    `requested_at` and `start`; `approved` is `approval == "approved"`, `denied` is `outcome == "denied"`."""

    correlation_id: str
    requested_at: str | None = None
    start: str | None = None
    approved: bool = False
    denied: bool = False


def _started(text: str, time: str) -> str:
    """`_detail(details, START_KEYS) or time` of one stored completion event (its JSON text)."""
    return start_detail(text) or time


def start_detail(text: str) -> str | None:
    """`_detail(details, START_KEYS)` of one stored audit event (its JSON text): the start its details name.

    Stored JSON is canonical (keys sorted, no spaces): `{"activity":...,"category":...,"correlation_id":...,
    "details":{...},"group_id":...`. When nothing before `details` is an object and `details` holds none,
    its text runs from `,"details":{` to the first `}`: when the only key there starting with "start" (any
    case: every START_KEYS name does) is `StartTime` with a canonical time, that time is the answer. When
    nothing after `,"details":{` starts with `"start` and nothing there is escaped (`\\u....`), there is
    no start. Anything else is decoded and goes through `_detail`."""
    at = text.find(',"details":{')
    if at > 0 and text.find("{", 1, at) < 0:
        close = text.find("}", at)
        flat = text[at + 11:close + 1] if close > 0 and text.find("{", at + 12, close) < 0 else None
        if flat is not None:
            low = flat.lower()
            key = flat.find('"StartTime":"')
            if key >= 0 and low.count('"start') == 1 and low.find('"start') == key and flat[key + 33:key + 34] == '"':
                value = flat[key + 13:key + 33]
                if is_canonical(value):
                    try:
                        parse_iso(value)
                        return value
                    except ValueError:
                        return None
        rest = text[at:]
        if '"start' not in rest.lower() and "\\u" not in rest:
            return None  # no key of the details starts with "start"
        if flat is not None:
            try:
                details = json.loads(flat)
            except ValueError:
                details = None
            if isinstance(details, dict):
                return _detail(details, START_KEYS)
    details = json.loads(text).get("details")
    return _detail(details, START_KEYS) if isinstance(details, dict) else None


def activity_of(text: str) -> str | None:
    """The `activity` of one stored audit event (its JSON text): "" when it has none, None when it is not
    text. Canonical JSON begins `{"activity":"...",` when the event has one (no key sorts before it)."""
    if text.startswith('{"activity":"'):
        end = text.find('"', 13)
        if end > 0 and "\\" not in text[13:end] and text[end + 1:end + 2] in (",", "}"):
            return text[13:end]
    return activity_value(json.loads(text).get("activity"))


def activity_value(activity: Any) -> str | None:
    """An event's `activity` as `activity_of` reads it from the event's text: "" when it has none, None when it is
    not text."""
    return "" if activity is None else activity if isinstance(activity, str) else None


def outline_activations(rows: Iterable[tuple[str | None, str, str, str, str | None]]) -> list[Outline]:
    """Activations as the weekly counts need them, from `HistoryStore.audit_activities` rows (correlation id,
    source id, time, activity, stored JSON of the completions) in any order.

    `join_activations` applies an activation's events in (time, id) order, each later event overwriting:
    so `requested_at` is the time of its latest request, `approval` the kind of its latest decision,
    `start` that of its latest completion, and the outcome is `denied` when a denial is its latest denial or
    completion. Keeping those latest events per correlation id (`fold`) gives the same values without
    sorting or holding the events."""
    latest: dict[str, list[Any]] = {}
    for correlation, source, time, activity, data in rows:
        kind = activity_kind(activity)
        if kind is None or not correlation:
            continue
        entry = latest.get(correlation)
        if entry is None:
            entry = latest[correlation] = [None] * 7
        fold(entry, kind, time, source, data)
    return [outline(correlation, e) for correlation, e in latest.items()]


def fold(entry: list[Any], kind: str, time: str, source: str, data: str | None = None,
         started: str | None = None) -> None:
    """Apply one event of an activation (`kind` as `activity_kind` names it; `data`: a completion's stored
    JSON, for its start, unless the caller found that already: `started`, `_started(data, time)`) to its entry:
    [request key, decision key, completion key, denial key, request time, decision kind, completion start], each
    key the (time, source id) of the latest event of that kind. The same events in any order, or split over
    several folds of one entry, leave the same entry."""
    key = (time, source)
    if kind == "requested":
        if entry[0] is None or key > entry[0]:
            entry[0], entry[4] = key, time
    elif kind == "completed":
        if entry[2] is None or key > entry[2]:
            entry[2], entry[6] = key, started if started is not None else _started(data, time) if data else time
    else:
        if entry[1] is None or key > entry[1]:
            entry[1], entry[5] = key, kind
        if kind == "denied" and (entry[3] is None or key > entry[3]):
            entry[3] = key


def outline(correlation: str, entry: list[Any]) -> Outline:
    return Outline(correlation, entry[4], entry[6], entry[5] == "approved",
                   entry[3] is not None and (entry[2] is None or entry[3] > entry[2]))


# -- activations kept in the history (table `activation`), folded from the stored audit events -------
def fold_stored(slots: dict[str, list[Any]], correlation: str | None, source: str, occurred_at: datetime,
                data: str, seq: int = 0) -> None:
    """Fold one stored audit event (its JSON text as stored, its `occurred_at`, the seq of the snapshot that
    first brought it) into slots[correlation] = [first_at, last_at, entry, newest seq] when it belongs to
    an activation. Its time is `occurred_at` to the second, as `HistoryStore.audit_activities` reads it."""
    if not correlation:
        return
    kind = activity_kind(activity_of(data) or "")
    if kind is not None:
        fold_kind(slots, correlation, source, occurred_at, data, kind, seq)


def fold_kind(slots: dict[str, list[Any]], correlation: str, source: str, occurred_at: datetime, data: str,
              kind: str, seq: int = 0, started: str | None = None, when: str | None = None) -> None:
    """`fold_stored` of an event of an activation whose `activity_kind` is known (`kind`, not None); `started` as
    `fold` takes it; `when`: `iso(occurred_at)`, when the caller wrote it already."""
    slot = slots.get(correlation)
    if slot is None:
        slot = slots[correlation] = [occurred_at, occurred_at, [None] * 7, seq]
    elif occurred_at < slot[0]:
        slot[0] = occurred_at
    elif occurred_at > slot[1]:
        slot[1] = occurred_at
    slot[3] = max(slot[3], seq)
    fold(slot[2], kind, when or occurred_at.isoformat(timespec="seconds") + "Z", source, data, started)  # iso(at)


def activation_row(slot: list[Any]) -> dict[str, Any]:
    """The `activation` columns of a folded slot (`fold_stored`)."""
    row = activation_texts(slot)
    row["at"], row["asked"] = _naive(row["at"]), _naive(row["asked"])
    return row


def activation_texts(slot: list[Any]) -> dict[str, Any]:
    """`activation_row`, its `at` and `asked` the ISO texts they are parsed from (`iso`'s form, from the fold)."""
    first_at, last_at, entry, _ = slot
    o = outline("", entry)
    return {"first_at": first_at, "last_at": last_at, "at": o.start or o.requested_at,
            "asked": o.requested_at or o.start, "approved": o.approved, "denied": o.denied, "state": compact(entry)}


def _naive(when: str | None) -> datetime | None:
    return None if when is None else parse_iso(when)


def stored_slot(first_at: datetime, last_at: datetime, state: str) -> list[Any]:
    """A slot from an `activation` row, to fold more events into."""
    entry = json.loads(state)
    return [first_at, last_at, [tuple(k) if k else None for k in entry[:4]] + entry[4:], 0]
