"""Standing-access series over a range of snapshots: one view model for the dashboard and the pack.

Every number here is computed from the history through the same snapshot views the controls use,
so a chart, a pack table and a control finding can never disagree.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from pimtrail.config import Config
from pimtrail.controls.profiles import Profile
from pimtrail.controls.view import GLOBAL_ADMIN, HoldingsHistory, SnapshotView, build_view
from pimtrail.store import HistoryStore, SnapshotInfo
from pimtrail.timeutil import iso, parse_iso

TIER_WEIGHT = {0: 3, 1: 2, 2: 1}
REVIEW_KINDS = ("access_review_definition", "access_review_instance", "access_review_decision")


@dataclass
class SnapshotPoint:
    """The standing-access figures of one snapshot."""

    seq: int
    collected_at: str
    standing_by_tier: dict[str, int]  # permanent active privileged holdings (break-glass apart), by tier
    standing_total: int
    break_glass: int
    eligible: int
    active_assigned: int
    activated: int
    ga_holders: int
    outside_pim: int
    privileged_principals: int


@dataclass
class WeekPoint:
    week: str  # Monday of the ISO week
    activations: int
    approved: int
    denied: int
    off_hours: int


@dataclass
class ReviewCycle:
    instance_id: str
    definition: str | None
    ended: str | None
    status: str | None
    decisions: int
    reviewed: int
    not_reviewed: int
    denied: int
    denied_applied: int


@dataclass
class CycleTotal:
    """One access-review cycle: the instances of one review definition that ended on the same day."""

    definition: str | None
    ended: str  # the day the cycle's instances ended (YYYY-MM-DD)
    instances: int
    decisions: int
    reviewed: int
    not_reviewed: int
    denied: int
    denied_applied: int

    @property
    def completion(self) -> float | None:
        return round(self.reviewed / self.decisions, 4) if self.decisions else None


@dataclass
class Series:
    tenant_id: str
    tenant_name: str | None
    profile: str
    start: str
    end: str
    points: list[SnapshotPoint] = field(default_factory=list)
    weeks: list[WeekPoint] = field(default_factory=list)
    reviews: list[ReviewCycle] = field(default_factory=list)
    cycles: list[CycleTotal] = field(default_factory=list)  # reviews summed per definition and end day
    pass_rate: list[dict[str, Any]] = field(default_factory=list)  # seq, collected_at, pass, total, rate
    status_changes: list[dict[str, Any]] = field(default_factory=list)  # control, from, to, seq
    top_standing: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # added / removed since previous

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def holding_key(h) -> tuple:
    return (h.principal_id, h.role_id, h.state, h.via, h.group_id or "")


def point(view: SnapshotView) -> SnapshotPoint:
    break_glass = view.break_glass_ids()
    holdings = [h for h in view.user_holdings() if view.tier(h.role_id) is not None]
    standing = Counter()
    for h in holdings:
        if h.state == "active" and h.permanent and h.principal_id not in break_glass:
            standing[str(view.tier(h.role_id))] += 1
    active = [h for h in holdings if h.state == "active"]
    return SnapshotPoint(
        seq=view.snapshot.seq, collected_at=iso(view.snapshot.collected_at),
        standing_by_tier={t: standing.get(t, 0) for t in ("0", "1", "2")},
        standing_total=sum(standing.values()),
        break_glass=len(break_glass),
        eligible=sum(1 for h in holdings if h.state == "eligible"),
        active_assigned=sum(1 for h in active if not h.activated),
        activated=sum(1 for h in active if h.activated),
        ga_holders=len({h.principal_id for h in holdings if h.role_id == GLOBAL_ADMIN}),
        outside_pim=sum(1 for i in view.facts.get("role_assignment", []) if i.get("outside_pim")),
        privileged_principals=len({h.principal_id for h in holdings if view.tier(h.role_id) in (0, 1)}),
    )


def weeks(view: SnapshotView) -> list[WeekPoint]:
    return week_points(((a.start or a.requested_at, a.approval == "approved", a.outcome == "denied")
                        for a in view.activations), view.config)


def week_points(activations, config: Config) -> list[WeekPoint]:
    """Activations per ISO week of their start (else request): (when, approved, denied) each."""
    return _weeks(((when, 1, approved, denied) for when, approved, denied in activations), _placer(config))


def _weeks(counts, place) -> list[WeekPoint]:
    """(when, activations, approved, denied) -> week points: each `when` placed in its week (Monday) and
    counted as outside business hours or not, all of its activations alike."""
    buckets: dict[str, Counter] = defaultdict(Counter)
    placed: dict[str, tuple[str, bool]] = {}  # when -> (its week's Monday, outside business hours)
    for when, n, approved, denied in counts:
        if not when:
            continue
        week, outside = placed.get(when) or placed.setdefault(when, place(when))
        bucket = buckets[week]
        bucket["activations"] += n
        bucket["approved"] += approved
        bucket["denied"] += denied
        bucket["off_hours"] += n if outside else 0
    return [WeekPoint(week, b["activations"], b["approved"], b["denied"], b["off_hours"])
            for week, b in sorted(buckets.items())]


def _placer(config: Config):
    """when -> (Monday of its week, `off_hours` of it). The zone's UTC offset is looked up once per hour
    (when it is the same at both ends of the hour) instead of once per moment."""
    from zoneinfo import ZoneInfo

    from pimtrail.controls.activity import off_hours
    from pimtrail.timeutil import is_canonical, parse_iso

    hours = config.business_hours
    utc, zone = ZoneInfo("UTC"), ZoneInfo(hours.time_zone)
    offsets: dict[str, timedelta | None] = {}
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

    def place(when: str) -> tuple[str, bool]:
        moment = parse_iso(when)
        monday = (moment - timedelta(days=moment.weekday())).date().isoformat()
        if not is_canonical(when):
            return monday, off_hours(moment, hours)
        hour = when[:13]
        if hour not in offsets:
            top = moment.replace(minute=0, second=0)
            first, last = (t.replace(tzinfo=utc).astimezone(zone).utcoffset()
                           for t in (top, top + timedelta(minutes=59, seconds=59)))
            offsets[hour] = first if first == last else None
        offset = offsets[hour]
        if offset is None:  # the zone changes its offset within this hour
            return monday, off_hours(moment, hours)
        local = moment + offset
        return monday, days[local.weekday()] not in hours.days or not hours.start <= local.time() < hours.end

    return place


def _hour_placer(config: Config):
    """hour (`YYYY-MM-DD HH`, UTC) -> what `_placer` gives each whole second of it (week, outside business
    hours) when that is the same for all of them, else None: the zone keeps one offset through the hour,
    and no business-hours start or end and no local midnight falls after its first second and by its last
    (none can when all of them are whole hours and so is the offset)."""
    from zoneinfo import ZoneInfo

    hours = config.business_hours
    utc, zone = ZoneInfo("UTC"), ZoneInfo(hours.time_zone)
    edges = (hours.start, hours.end, time(0))
    whole = all(e.minute == e.second == e.microsecond == 0 for e in edges)
    span, hour = timedelta(seconds=3599), timedelta(hours=1)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

    def place(text: str) -> tuple[str, bool] | None:
        top = datetime(int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]))
        offset = top.replace(tzinfo=utc).astimezone(zone).utcoffset()
        if offset is None or (top + span).replace(tzinfo=utc).astimezone(zone).utcoffset() != offset:
            return None
        local = top + offset
        if not whole or offset % hour:
            for edge in edges:
                moment = datetime.combine(local.date(), edge)
                if moment <= local:
                    moment += timedelta(days=1)
                if moment <= local + span:
                    return None
        monday = (top - timedelta(days=top.weekday())).date().isoformat()
        return monday, days[local.weekday()] not in hours.days or not hours.start <= local.time() < hours.end

    return place


def range_weeks(store: HistoryStore, tenant: str, config: Config, start: datetime, end: datetime) -> list[WeekPoint]:
    """`weeks` of a view of the period [start, end): the activations joined from the audit events since a
    day before it, those requested (else started) in it.

    Counted in SQL from the activations the history keeps (`HistoryStore.activation_hours`: a year is
    ~730,000 audit events, ~240,000 activations), per hour of each one's start (else request), each hour
    placed in its week and against business hours once when all of it falls alike (`_hour_placer`), else per
    second. The few activations with events on both sides of the range's edges are folded from the events
    in it, as a view of the range would see them."""
    from pimtrail.activations import outline_activations

    since = start - timedelta(days=1)
    rows, across = store.activation_hours(tenant, since, end, start, end)
    by_hour = _hour_placer(config)
    hours = {h: by_hour(h) for h in {h for h, *_ in rows}}
    mixed = [h for h, placed in hours.items() if placed is None]
    counts: list[tuple[str | None, int, int, int]] = [r for r in rows if hours[r[0]] is not None]
    if mixed:  # hours not all alike: their activations per second
        counts += [(f"{h[:10]}T{h[11:]}Z", n, a, d)
                   for h, n, a, d in store.activation_hours(tenant, since, end, start, end, seconds_of=mixed)[0]]
    if across:
        inside = _inside(start, end)
        counts += [(o.start or o.requested_at, 1, o.approved, o.denied)
                   for o in outline_activations(store.activation_events(tenant, since, end, across))
                   if inside(o.requested_at or o.start)]
    exact = _placer(config)
    return _weeks(counts, lambda when: hours[when] if len(when) == 13 else exact(when))


def _inside(start: datetime, end: datetime):
    """when (stored text) -> start <= when < end; canonical times compare as text, and so do the bounds
    when they are whole seconds."""
    from pimtrail.controls.period_events import event_time as _time

    low, high = (iso(t) if t.microsecond == 0 else None for t in (start, end))

    def inside(when: str | None) -> bool:
        if not when:
            return False
        if low and high and len(when) == 20 and when[10] == "T" and when[19] == "Z":
            return low <= when < high
        return start <= _time(when) < end

    return inside


def read_weeks(store: HistoryStore, tenant: str, config: Config, start: datetime, end: datetime) -> list[WeekPoint]:
    """`range_weeks` folded from the range's audit events themselves (`outline_activations`): the reading
    that the `activation` rows replace, kept to test them against."""
    from pimtrail.activations import outline_activations
    from pimtrail.controls.view import paused_gc

    with paused_gc():
        outlines = outline_activations(store.audit_activities(tenant, start - timedelta(days=1), end))
    inside = _inside(start, end)
    return week_points(((o.start or o.requested_at, o.approved, o.denied) for o in outlines
                        if inside(o.requested_at or o.start)), config)


DECISION_FIELDS = ("instance_id", "decision", "apply_result")  # what the review cycles count decisions by


def decision_counts(decisions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(instance id, decision, apply result, count) of some review decision facts: what
    `HistoryStore.fact_counts(..., DECISION_FIELDS)` counts in SQL."""
    return [(*k, n) for k, n in Counter(tuple(d.get(f) for f in DECISION_FIELDS) for d in decisions).items()]


def review_cycles(facts: dict[str, list[dict[str, Any]]], counts: list[tuple[Any, ...]], start: datetime,
                  end: datetime) -> list[ReviewCycle]:
    """The review instances (`facts`: the definitions and instances of a snapshot) that ended in [start, end],
    oldest first, with their decisions summed from `counts` (`decision_counts`)."""
    definitions = {f["id"]: f for f in facts.get("access_review_definition", []) if f.get("id")}
    by_instance: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
    for instance_id, *rest in counts:
        by_instance[instance_id].append(rest)
    out = []
    for inst in sorted(facts.get("access_review_instance", []), key=lambda i: i.get("end") or ""):
        if not inst.get("end") or not start <= parse_iso(inst["end"]) <= end:
            continue
        decisions = by_instance.get(inst["id"], [])
        denied = [(result, n) for decision, result, n in decisions if decision == "Deny"]
        out.append(ReviewCycle(
            inst["id"], (definitions.get(inst.get("definition_id")) or {}).get("name"), inst.get("end"),
            inst.get("status"), sum(n for *_, n in decisions),
            sum(n for decision, _, n in decisions if decision not in (None, "NotReviewed")),
            sum(n for decision, _, n in decisions if decision in (None, "NotReviewed")), sum(n for _, n in denied),
            sum(n for result, n in denied if (result or "").startswith("AppliedSuccessfully"))))
    return out


def cycle_totals(reviews: list[ReviewCycle]) -> list[CycleTotal]:
    """Entra opens one review instance per role or group in scope: a cycle is their sum."""
    groups: dict[tuple[str, str], list[ReviewCycle]] = defaultdict(list)
    for r in reviews:
        groups[((r.ended or "")[:10], r.definition or "")].append(r)
    return [CycleTotal(items[0].definition, ended, len(items),
                       *(sum(getattr(r, name) for r in items)
                         for name in ("decisions", "reviewed", "not_reviewed", "denied", "denied_applied")))
            for (ended, _), items in sorted(groups.items())]


def snapshots_in(store: HistoryStore, tenant: str, start: datetime | None, end: datetime | None) -> list[SnapshotInfo]:
    return [s for s in store.snapshots(tenant)
            if (start is None or s.collected_at >= start) and (end is None or s.collected_at <= end)]


class _Later:
    """fn(*args) in a thread of its own when `thread`, else right away; `result()` gives what it returned."""

    def __init__(self, thread: bool, fn, *args) -> None:
        import threading

        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True) if thread else None
        if self.thread is not None:
            self.thread.start()
        else:
            self._run(fn, args)

    def _run(self, fn, args) -> None:
        try:
            self.value = fn(*args)
        except BaseException as error:  # handed to the caller of result()
            self.error = error

    def result(self) -> Any:
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


def _separate(store: HistoryStore) -> bool:
    """Whether another thread can read the same history: not an in-memory SQLite database (one per connection)."""
    url = store.engine.url
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


def last_figures(store: HistoryStore, tenant: str, sweep, snapshot: SnapshotInfo, first: datetime, last: datetime,
                 closing: SnapshotView | None = None) -> tuple[list[ReviewCycle], list[dict[str, Any]], dict[str, Any]]:
    """The range's review cycles, and the top standing holders of its last snapshot (`snapshot`) and the
    holdings it added or removed since the one before, with `sweep` (evidence/standing.py) advanced to it.

    The reviews are the snapshot's review definitions and instances with its decisions counted in SQL
    (`HistoryStore.fact_counts`: a large tenant holds ~20,000 decisions, 17 MB of JSON), or counted from the
    facts of `closing`, a view of the same snapshot (the pack's). The holders and changes come from the
    sweep's units, without expanding the holdings of a view of either snapshot."""
    if closing is not None and closing.snapshot.id == snapshot.id:
        reviews, counts = closing.facts, decision_counts(closing.facts.get("access_review_decision", []))
    else:
        reviews = {kind: store.facts(tenant, kind, snapshot.seq) for kind in REVIEW_KINDS[:2]}
        counts = store.fact_counts(tenant, "access_review_decision", snapshot.seq, DECISION_FIELDS)
    return (review_cycles(reviews, counts, first, last + timedelta(seconds=1)), sweep.top_standing(),
            sweep.holding_changes())


def build_series(store: HistoryStore, tenant: str, profile: Profile, config: Config,
                 start: datetime | None = None, end: datetime | None = None,
                 history: HoldingsHistory | None = None, closing: SnapshotView | None = None) -> Series:
    """The series over the snapshots in range. Standing-access points come from one read of the history
    (`HoldingsHistory`, which a caller may pass in to share) swept snapshot by snapshot (evidence/standing.py);
    pass rates come from the stored check runs, and only a snapshot without one is evaluated here (a full view).
    `closing`, a view of the last snapshot (the pack's), lends its review facts.

    Weekly activations come from the `activation` rows of the range (`range_weeks`); reviews, the top standing
    holders and the holdings added and removed since the snapshot before the last from `last_figures`: the
    same numbers as full views of the last two snapshots (tests compare them)."""
    from pimtrail.controls.engine import evaluate
    from pimtrail.evidence.standing import Sweep, standing_points, trend_history

    snaps = snapshots_in(store, tenant, start, end)
    org = store.facts(tenant, "tenant", snaps[-1].seq) if snaps else []
    first = start or (snaps[0].collected_at if snaps else datetime.min)
    last = end or (snaps[-1].collected_at if snaps else datetime.min)
    series = Series(tenant, org[0]["name"] if org else None, profile.name, iso(first), iso(last))
    if not snaps:
        return series
    # The weekly activations read the range's audit events (a year holds ~730,000): in a thread of their
    # own, where SQLite scans them outside the GIL while the holdings are read and swept here.
    weekly = _Later(_separate(store), range_weeks, store, tenant, config, first, last + timedelta(seconds=1))
    posture = store.control_posture(tenant, profile.name)
    if history is None or not history.covers(snaps):
        history = trend_history(store, tenant, snaps, profile, config)
    previous_status: dict[str, str] = {}
    sweep = Sweep(history)
    for snap, standing in zip(snaps, standing_points(history, snaps, sweep)):  # = point(view) of each snapshot
        series.points.append(standing)
        statuses = posture.get(snap.id) or {r.control.id: r.status.value for r in
                                            evaluate(build_view(store, tenant, snap, profile, config)).results}
        assessed = [s for s in statuses.values() if s not in ("not_assessable", "not_applicable")]
        passed = sum(1 for s in assessed if s in ("pass", "excepted"))
        series.pass_rate.append({"seq": snap.seq, "collected_at": iso(snap.collected_at), "pass": passed,
                                 "total": len(assessed), "rate": round(passed / len(assessed), 4) if assessed else None})
        for control_id, status in sorted(statuses.items()):
            if control_id in previous_status and previous_status[control_id] != status:
                series.status_changes.append({"control_id": control_id, "from": previous_status[control_id],
                                              "to": status, "seq": snap.seq, "collected_at": iso(snap.collected_at)})
        previous_status = statuses
    series.reviews, series.top_standing, series.changes = last_figures(store, tenant, sweep, snaps[-1], first, last,
                                                                       closing)
    series.cycles = cycle_totals(series.reviews)
    series.weeks = weekly.result()
    return series
