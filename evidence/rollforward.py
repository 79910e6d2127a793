"""Roll-forward of privileged access over a period: opening + added − removed = closing, per role.

Each addition and removal is dated by the snapshot that first showed it and explained, where the
audit trail allows, by the audit entry (or applied review decision) that caused it. What no event
explains is listed as unexplained, never dropped.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

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
    if h.via != "direct":
        return ("add member to group", "(pim activation)", "in pim") if change == "added" else \
               ("remove member from group", "(pim activation", "in pim", "expired")
    if change == "added":
        return ("add eligible member to role",) if h.state == "eligible" else ("add member to role",)
    return ("remove eligible member from role",) if h.state == "eligible" else \
           ("remove member from role", "remove permanent direct role assignment")


def explain(change: str, h: Holding, events: list[dict], decisions: list[dict], role_ids: set[str]) -> dict | None:
    wanted = _expected(change, h)
    subject = h.group_id if h.via == "direct" and h.principal.get("type") == "group" else h.principal_id
    for ev in events:
        activity = (ev.get("activity") or "").lower()
        if not any(w in activity for w in wanted):
            continue
        target = (ev.get("principal") or {}).get("id")
        if h.via == "direct":
            if target != subject or (ev.get("role_id") not in role_ids):
                continue
        elif target != h.principal_id or ev.get("group_id") not in (h.group_id, None):
            continue
        return {"source": "audit", "id": ev["id"], "time": ev["time"], "activity": ev.get("activity"),
                "by": (ev.get("initiated_by") or {}).get("upn") or (ev.get("initiated_by") or {}).get("name")}
    if change == "removed":
        for d in decisions:
            if (d.get("principal") or {}).get("id") == h.principal_id and \
                    (d.get("resource") or {}).get("id") in role_ids and d.get("decision") in ("Deny", "NotReviewed"):
                return {"source": "access review", "id": d["id"], "time": d.get("applied_at") or d.get("reviewed_at"),
                        "activity": f"review decision {d.get('decision')} applied ({d.get('apply_result')})",
                        "by": (d.get("reviewed_by") or {}).get("upn") or "default decision"}
    return None


def roll_forward(views: list[SnapshotView],
                 audit_events: list[dict] | Callable[[set[str]], list[dict]]) -> list[RoleRollForward]:
    """`views`: the opening snapshot's view first, then every later snapshot up to the closing one.
    `audit_events`: the period's audit events in stored order, or a function giving those about some
    principals (their target): only the events about a holder that moved can explain a movement."""
    indexes = [{key(h): h for h in view.user_holdings() if view.tier(h.role_id) is not None} for view in views]
    last = views[-1]
    opening, closing = indexes[0], indexes[-1]
    roles: dict[str, dict[str, Any]] = {}
    for view, index in zip(views, indexes):
        for h in index.values():
            roles.setdefault(h.role_id, {"name": h.role.get("name") or h.role_id, "tier": view.tier(h.role_id),
                                         "template": h.role.get("template_id")})
    changes = []  # (before, after, change, holding)
    for (before, old), (after, new) in zip(zip(views, indexes), zip(views[1:], indexes[1:])):
        for change, keys, source in (("added", set(new) - set(old), new), ("removed", set(old) - set(new), old)):
            changes += [(before, after, change, source[k]) for k in sorted(keys)]
    if callable(audit_events):
        audit_events = audit_events({_subject(h) for _, _, _, h in changes}) if changes else []
    movements: dict[str, list[Movement]] = defaultdict(list)
    decisions = [d for d in last.facts.get("access_review_decision", []) if d.get("applied_at")]
    timeline = sorted(((parse_iso(e["time"]), n) for n, e in enumerate(audit_events)))
    moments = [t for t, _ in timeline]
    windows: dict[tuple[int, int], tuple[dict, list]] = {}
    for before, after, change, h in changes:
        lo, hi = before.snapshot.collected_at, after.snapshot.collected_at
        if (id(before), id(after)) not in windows:
            # the events in (lo, hi], in their original order
            chosen = sorted(n for _, n in timeline[bisect_right(moments, lo):bisect_right(moments, hi)])
            by_target: dict[str | None, list[dict]] = defaultdict(list)  # explain() looks at the holder's only
            for n in chosen:
                by_target[(audit_events[n].get("principal") or {}).get("id")].append(audit_events[n])
            windows[(id(before), id(after))] = (by_target, [d for d in decisions if lo < parse_iso(d["applied_at"]) <= hi])
        by_target, applied = windows[(id(before), id(after))]
        role_ids = {h.role_id, roles[h.role_id].get("template")} - {None}
        movements[h.role_id].append(Movement(change, iso(hi), iso(lo), row(h, after.tier(h.role_id)),
                                             explain(change, h, by_target.get(_subject(h), []), applied, role_ids)))
    out = []
    for role_id, info in sorted(roles.items(), key=lambda kv: (kv[1]["tier"], kv[1]["name"])):
        opened = sum(1 for k in opening if k[1] == role_id)
        closed = sum(1 for k in closing if k[1] == role_id)
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
