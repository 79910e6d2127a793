"""The vocabulary of the controls engine: statuses, severities, findings, results, declarations."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    NOT_ASSESSABLE = "not_assessable"  # data missing: never read as compliance
    NOT_APPLICABLE = "not_applicable"
    EXCEPTED = "excepted"


class Severity(str, Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return ["info", "low", "medium", "high", "critical"].index(self.value)


@dataclass
class Subject:
    principal_id: str | None = None
    principal_name: str | None = None
    principal_type: str | None = None
    role: str | None = None
    group: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"principal_id": self.principal_id, "principal_name": self.principal_name,
                "principal_type": self.principal_type, "role": self.role, "group": self.group}


@dataclass
class Finding:
    status: Status
    message: str
    subject: Subject = field(default_factory=Subject)
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "message": self.message,
                "subject": self.subject.as_dict(), "evidence": self.evidence}


@dataclass(frozen=True)
class Control:
    """A declaration: what a control checks, why, how to fix it, what it needs and reads."""

    id: str  # versioned, e.g. PIM-GA-001
    title: str
    severity: Severity
    rationale: str
    remediation: str
    datasets: tuple[str, ...]
    params: tuple[str, ...]
    evaluate: Callable[..., list[Finding]]
    family: str = ""
    # whether the audit windows must cover the evaluation period (`SnapshotView.missing`): not for the control that
    # reports how far the collections reach, which would otherwise be not assessable where it has most to say
    audit_coverage: bool = True


@dataclass
class Result:
    control: Control
    status: Status
    findings: list[Finding]
    frameworks: dict[str, list[str]]
    reason: str | None = None  # why not assessable / not applicable

    def as_dict(self) -> dict[str, Any]:
        return {"control_id": self.control.id, "title": self.control.title,
                "severity": self.control.severity.value, "status": self.status.value,
                "reason": self.reason, "frameworks": self.frameworks,
                "findings": [f.as_dict() for f in self.findings]}


def aggregate(findings: list[Finding]) -> Status:
    """A control's status from its findings: the worst wins; excepted failures do not fail."""
    statuses = {f.status for f in findings}
    for status in (Status.FAIL, Status.WARN, Status.EXCEPTED):
        if status in statuses:
            return status
    if not findings or statuses == {Status.NOT_APPLICABLE}:
        return Status.NOT_APPLICABLE
    return Status.PASS
