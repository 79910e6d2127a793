"""Evaluate every control on a snapshot view: availability, exceptions, framework mappings."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pimtrail.config import ExceptionEntry

from .model import Control, Finding, Result, Status, aggregate
from .profiles import DATA
from .registry import all_controls
from .view import SnapshotView

EXPLAIN = {
    "AadPremiumLicenseRequired": "the tenant has no Entra ID P2 licence",
    "Authentication_RequestFromNonPremiumTenantOrB2CTenant": "the tenant has no Entra ID P1/P2 licence",
    "Authorization_RequestDenied": "the app lacks the read permission",
}


@lru_cache(maxsize=1)
def mappings() -> dict[str, Any]:
    return tomllib.loads((DATA / "mappings.toml").read_text())


def frameworks_for(control_id: str) -> dict[str, list[str]]:
    return {k: list(v) for k, v in mappings().get("controls", {}).get(control_id, {}).items()}


@dataclass
class CheckReport:
    view: SnapshotView
    results: list[Result]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.results:
            out[r.status.value] += 1
        return out


def _matches(entry: ExceptionEntry, control: Control, finding: Finding) -> bool:
    if entry.control != control.id:
        return False
    wanted = entry.subject.lower()
    s = finding.subject
    return wanted in {(v or "").lower() for v in (s.principal_id, s.principal_name, s.role, s.group)}


def apply_exceptions(view: SnapshotView, control: Control, findings: list[Finding]) -> None:
    today = view.snapshot.collected_at.date()
    for finding in findings:
        if finding.status not in (Status.FAIL, Status.WARN):
            continue
        for entry in view.config.exceptions:
            if not _matches(entry, control, finding):
                continue
            record = {"reason": entry.reason, "approver": entry.approver, "expires": entry.expires.isoformat()}
            if entry.expires < today:
                finding.message += f" (exception expired {entry.expires.isoformat()})"
                finding.evidence["expired_exception"] = record
            else:
                finding.status = Status.EXCEPTED
                finding.evidence["exception"] = record
            break


def evaluate_control(view: SnapshotView, control: Control) -> Result:
    frameworks = frameworks_for(control.id)
    missing = view.missing(control.datasets, control.audit_coverage)
    if missing:
        reasons = []
        for item in missing:
            code = item.split("(")[-1].rstrip(")")
            reasons.append(f"{item}: {EXPLAIN[code]}" if code in EXPLAIN else item)
        reason = "needs data this snapshot lacks: " + "; ".join(reasons)
        return Result(control, Status.NOT_ASSESSABLE, [Finding(Status.NOT_ASSESSABLE, reason)], frameworks, reason)
    params = {name: view.profile.params[name] for name in control.params}
    findings = control.evaluate(view, params)
    apply_exceptions(view, control, findings)
    status = aggregate(findings)
    reason = findings[0].message if status is Status.NOT_APPLICABLE and findings else None
    return Result(control, status, findings, frameworks, reason)


def evaluate(view: SnapshotView, only: list[str] | None = None) -> CheckReport:
    controls = [c for c in all_controls() if not only or c.id in only]
    return CheckReport(view, [evaluate_control(view, c) for c in controls])
