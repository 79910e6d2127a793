"""Activations joined with their approvals from stored audit events.

Graph gives no app-only read of approvals; the audit log does: PIM writes `... requested`,
`... request approved/denied` and `... completed (PIM activation)` entries that share a
`correlationId`. The join runs on stored events, so an activation whose request and completion
arrived in different (overlapping) collections is still whole.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from pimtrail.timeutil import iso, parse_iso

START_KEYS = ("starttime", "startdatetime", "start time")
END_KEYS = ("expirationtime", "enddatetime", "endtime", "expiration time")


def _detail(details: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for key, value in details.items():
        if key.lower() in names and value:
            try:
                return iso(parse_iso(str(value)))
            except ValueError:
                return None
    return None


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


def join_activations(audit_events: Iterable[dict[str, Any]]) -> list[Activation]:
    by_correlation: dict[str, Activation] = {}
    for ev in sorted(audit_events, key=lambda e: (e["time"], e["id"])):
        kind = _kind(ev.get("activity") or "")
        if kind is None or not ev.get("correlation_id"):
            continue
        act = by_correlation.setdefault(ev["correlation_id"], Activation(
            ev["correlation_id"], "group" if ev.get("category") == "GroupManagement" else "role"))
        act.events.append(ev["id"])
        principal = ev.get("principal") or {}
        act.role_id = act.role_id or ev.get("role_id")
        act.role_name = act.role_name or ev.get("role_name")
        act.group_id = act.group_id or ev.get("group_id")
        if kind in ("requested", "completed"):
            requester = ev.get("initiated_by") or {}
            act.principal_id = act.principal_id or principal.get("id") or requester.get("id")
            act.principal_name = act.principal_name or principal.get("upn") or principal.get("name") \
                or requester.get("upn")
        if kind == "requested":
            act.requested_at = ev["time"]
            act.justification = ev.get("result_reason") or act.justification
        elif kind in ("approved", "denied"):
            approver = ev.get("initiated_by") or {}
            act.approvers.append({"id": approver.get("id"), "upn": approver.get("upn"),
                                  "decision": kind, "time": ev["time"]})
            act.approval = kind
            if kind == "denied":
                act.outcome = "denied"
        elif kind == "completed":
            act.start = _detail(ev.get("details") or {}, START_KEYS) or ev["time"]
            act.end = _detail(ev.get("details") or {}, END_KEYS)
            act.outcome = "activated" if (ev.get("result") or "success").lower() == "success" else "failed"
            act.justification = act.justification or ev.get("result_reason")
    for act in by_correlation.values():
        requester = act.principal_id
        act.self_approved = any(a["id"] and a["id"] == requester and a["decision"] == "approved"
                                for a in act.approvers)
        if act.approval == "not required" and act.outcome == "requested" and act.approvers == []:
            act.approval = "not required"
        if act.start and act.end:
            act.duration_hours = round(
                (parse_iso(act.end) - parse_iso(act.start)).total_seconds() / 3600, 2)
    return sorted(by_correlation.values(), key=lambda a: (a.requested_at or a.start or "", a.correlation_id))
