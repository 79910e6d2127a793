"""Shared shapes for controls: subjects, findings and the common 'one finding per holding' loop."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .model import Finding, Status, Subject
from .view import Holding, SnapshotView

PHISHING_RESISTANT_STRENGTH = "00000000-0000-0000-0000-000000000004"
PRIVILEGED_TIERS = (0, 1)


def holding_subject(h: Holding) -> Subject:
    group = None
    if h.group_id:
        group = h.group_id
    return Subject(h.principal_id, h.principal_name, h.principal.get("type"), h.role.get("name") or h.role_id, group)


def principal_subject(view: SnapshotView, principal_id: str, role: str | None = None) -> Subject:
    p = view.principal(principal_id)
    return Subject(principal_id, p.get("upn") or p.get("name") or principal_id, p.get("type"), role)


def holding_evidence(h: Holding, **extra: Any) -> dict[str, Any]:
    evidence = {"state": h.state, "permanent": h.permanent, "via": h.via, "start": h.start, "end": h.end,
                "outside_pim": h.outside_pim, "instance_id": h.instance.get("id"),
                "assignment_type": h.instance.get("assignment_type")}
    if h.group_id:
        evidence["group_id"] = h.group_id
    evidence.update(extra)
    return evidence


def passed(message: str, **evidence: Any) -> Finding:
    return Finding(Status.PASS, message, Subject(), evidence)


def each(items: Iterable[Any], check: Callable[[Any], Finding | None], none_message: str) -> list[Finding]:
    """Run `check` over items; keep the findings it returns; one pass finding when none."""
    findings = [f for f in (check(i) for i in items) if f is not None]
    return findings or [passed(none_message)]


def privileged(view: SnapshotView, h: Holding, tiers: tuple[int, ...] = PRIVILEGED_TIERS) -> bool:
    return view.tier(h.role_id) in tiers


def short(value: str | None, n: int = 80) -> str:
    text = (value or "").strip()
    return text if len(text) <= n else text[: n - 1] + "…"
