"""Roll-forward of privileged access over a period: opening + added − removed = closing, per role.

Each addition and removal is dated by the snapshot that first showed it and explained, where the
audit trail allows, by the audit entry (or applied review decision) that caused it. What no event
explains is listed as unexplained, never dropped.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from pimtrail.controls.view import Holding, SnapshotView
from pimtrail.timeutil import iso, parse_iso


def key(h: Holding) -> tuple[str, str, str, str, str]:
    return (h.principal_id, h.role_id, h.state, h.via, h.group_id or "")


def row(h: Holding, tier: int | None) -> dict[str, Any]:
    return {"principal_id": h.principal_id, "principal": h.principal_name, "principal_type": h.principal.get("type"),
            "role_id": h.role_id, "role": h.role.get("name") or h.role_id, "tier": tier, "state": h.state,
            "permanent": h.permanent, "via": h.via, "group_id": h.group_id, "outside_pim": h.outside_pim,
            "assignment_type": h.instance.get("assignment_type"), "start": h.start, "end": h.end}


@dataclass
class Movement:
    change: str  # added / removed
    observed: str  # the snapshot that first showed the change
    after: str  # the snapshot before it: the change happened in (after, observed]
    holding: dict[str, Any]
    explained_by: dict[str, Any] | None = None


@dataclass
class RoleRollForward:
    role_id: str
    role: str
    tier: int | None
    opening: int
    added: int
    removed: int
    closing: int
    balanced: bool
    movements: list[Movement] = field(default_factory=list)


def _expected(change: str, h: Holding) -> tuple[str, ...]:
    if h.via == "group":  # a plain membership
        return ("add member to group",) if change == "added" else ("remove member from group",)
    if h.via == "pim_group":
        return ("member to group", "(pim activation)", "in pim") if change == "added" else \
               ("member from group", "(pim activation", "in pim", "expired")
    if change == "added":
        return ("add eligible member to role",) if h.state == "eligible" else ("add member to role",)
    return ("remove eligible member from role",) if h.state == "eligible" else \
           ("remove member from role", "remove permanent direct role assignment")


def _moves(change: str, h: Holding, activity: str) -> bool:
    """Whether an audit entry's activity (lower case) moves this kind of holding this way: an addition adds, a
    removal removes (or an activation expires), and an eligibility moves by an entry that names one."""
    wanted = _expected(change, h)
    if not any(w in activity for w in wanted):
        return False
    if not (activity.startswith("add") if change == "added" else
            activity.startswith("remove") or "expired" in activity):
        return False  # "... in PIM" alone fits both ways
    # a PIM for Groups eligibility moves by an entry that names one, an active membership by one that does not (the
    # holding's state is the group's role's: a member of a group eligible for a role holds it eligible)
    return h.via != "pim_group" or ("eligible" in activity) == (h.membership == "group_pim_eligibility")


def explain(change: str, h: Holding, events: list[dict], decisions: list[dict], role_ids: set[str]) -> dict | None:
    """The audit entry that made the change (of those about the holder, in the window it happened in): of those
    that move this holding this way, the latest, which is the one whose effect the later snapshot shows (an
    activation that ended inside the window is not the one a snapshot shows held); else an applied review
    decision, for a removal."""
    subject = h.group_id if h.via == "direct" and h.principal.get("type") == "group" else h.principal_id
    found = None
    for ev in events:
        activity = (ev.get("activity") or "").lower()
        if not _moves(change, h, activity):
            continue
        target = (ev.get("principal") or {}).get("id")
        if h.via == "direct":
            if target != subject or (ev.get("role_id") not in role_ids):
                continue
        elif target != h.principal_id or ev.get("group_id") != h.group_id and not (
                h.via == "pim_group" and ev.get("group_id") is None and "group" in activity):
            continue  # of the holding's group (a PIM for Groups entry without its group target: when it says group)
        if found is None or (ev["time"], ev["id"]) > (found["time"], found["id"]):
            found = ev
    if found is not None:
        return {"source": "audit", "id": found["id"], "time": found["time"], "activity": found.get("activity"),
                "by": (found.get("initiated_by") or {}).get("upn") or (found.get("initiated_by") or {}).get("name")}
    if change == "removed":
        for d in decisions:
            if (d.get("principal") or {}).get("id") == h.principal_id and \
                    (d.get("resource") or {}).get("id") in role_ids and d.get("decision") in ("Deny", "NotReviewed"):
                return {"source": "access review", "id": d["id"], "time": d.get("applied_at") or d.get("reviewed_at"),
                        "activity": f"review decision {d.get('decision')} applied ({d.get('apply_result')})",
                        "by": (d.get("reviewed_by") or {}).get("upn") or "default decision"}
    return None


def roll_forward(views: Iterable[SnapshotView],
                 audit_events: list[dict] | Callable[[set[str]], list[dict]] = (),
                 decisions: list[dict] | None = None,
                 window_events: Callable[[set[str], datetime, datetime], list[dict]] | None = None
                 ) -> list[RoleRollForward]:
    """`views`: the opening snapshot's view first, then every later snapshot up to the closing one; a list or
    a generator: each view is compared with the next and then let go (two are held at once, whatever the
    number of snapshots). `audit_events`: the period's audit events in stored order, or a function giving
    those about some principals (their target): only the events about a holder that moved can explain a
    movement. `window_events`, instead: a function giving, for each pair of consecutive snapshots (lo, hi),
    the events about the principals that moved between them from at least (lo, hi], in stored order: only
    one such window's events are held at a time. `decisions`: the access-review decisions that may explain a
    removal (default: those of the last view's facts); only those applied are read."""
    roles: dict[str, dict[str, Any]] = {}
    windows: dict[tuple[datetime, datetime], list[tuple[str, Holding, int | None]]] = {}  # (lo, hi] -> changes
    opening: Counter = Counter()
    previous: tuple[datetime, dict] | None = None  # the last view's time and its holdings by key
    last = None
    for view in views:
        index = {key(h): h for h in view.user_holdings() if view.tier(h.role_id) is not None}
        for h in index.values():
            roles.setdefault(h.role_id, {"name": h.role.get("name") or h.role_id, "tier": view.tier(h.role_id),
                                         "template": h.role.get("template_id")})
        if previous is None:
            opening = Counter(k[1] for k in index)
        else:
            lo, old = previous
            changes = windows.setdefault((lo, view.snapshot.collected_at), [])  # with the tier at the later one
            for change, keys, source in (("added", set(index) - set(old), index),
                                         ("removed", set(old) - set(index), old)):
                changes += [(change, source[k], view.tier(source[k].role_id)) for k in sorted(keys)]
        previous, last = (view.snapshot.collected_at, index), view
    if last is None:
        return []
    closing = Counter(k[1] for k in previous[1])
    decisions = [d for d in (last.facts.get("access_review_decision", []) if decisions is None else decisions)
                 if d.get("applied_at")]
    del last, previous
    if window_events is None:
        if callable(audit_events):
            subjects = {_subject(h) for changes in windows.values() for _, h, _ in changes}
            audit_events = audit_events(subjects) if subjects else []
        timeline = sorted(((parse_iso(e["time"]), n) for n, e in enumerate(audit_events)))
        moments = [t for t, _ in timeline]
    movements: dict[str, list[Movement]] = defaultdict(list)
    for (lo, hi), changes in windows.items():
        if not changes:
            continue
        if window_events is None:  # the events in (lo, hi], in their original order
            chosen = [audit_events[n] for n in sorted(n for _, n in timeline[bisect_right(moments, lo):
                                                                             bisect_right(moments, hi)])]
        else:
            chosen = [e for e in window_events({_subject(h) for _, h, _ in changes}, lo, hi)
                      if lo < parse_iso(e["time"]) <= hi]
        by_target: dict[str | None, list[dict]] = defaultdict(list)  # explain() looks at the holder's only
        for event in chosen:
            by_target[(event.get("principal") or {}).get("id")].append(event)
        applied = [d for d in decisions if lo < parse_iso(d["applied_at"]) <= hi]
        for change, h, tier in changes:
            role_ids = {h.role_id, roles[h.role_id].get("template")} - {None}
            movements[h.role_id].append(Movement(change, iso(hi), iso(lo), row(h, tier),
                                                 explain(change, h, by_target.get(_subject(h), []), applied, role_ids)))
        del chosen, by_target
    out = []
    for role_id, info in sorted(roles.items(), key=lambda kv: (kv[1]["tier"], kv[1]["name"])):
        opened, closed = opening[role_id], closing[role_id]
        moves = movements.get(role_id, [])
        added = sum(1 for m in moves if m.change == "added")
        removed = sum(1 for m in moves if m.change == "removed")
        out.append(RoleRollForward(role_id, info["name"], info["tier"], opened, added, removed, closed,
                                   opened + added - removed == closed, moves))
    return out


def _subject(h: Holding) -> str:
    """Whose audit events can explain a movement of this holding (see `explain`)."""
    return h.group_id if h.via == "direct" and h.principal.get("type") == "group" else h.principal_id


def as_rows(rollforward: list[RoleRollForward]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(r).items() if k != "movements"} for r in rollforward]


def movement_rows(rollforward: list[RoleRollForward]) -> list[dict[str, Any]]:
    rows = []
    for r in rollforward:
        for m in r.movements:
            e = m.explained_by or {}
            rows.append({"role": r.role, "tier": r.tier, "change": m.change, "observed": m.observed, "after": m.after,
                         "principal": m.holding["principal"], "principal_id": m.holding["principal_id"],
                         "state": m.holding["state"], "via": m.holding["via"], "permanent": m.holding["permanent"],
                         "explained": bool(m.explained_by), "event_time": e.get("time"),
                         "event": e.get("activity"), "event_id": e.get("id"), "by": e.get("by")})
    return rows
