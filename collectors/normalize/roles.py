"""Directory roles: definitions, active and eligible instances, direct assignments, requests, alerts."""

from __future__ import annotations

from typing import Any

from pimtrail.model import EventRecord, FactRecord
from pimtrail.timeutil import parse_iso

from .base import DatasetPages, Item, odata_type
from .directory import principal_from_expand

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def role_definitions(pages: DatasetPages, privileged: set[str] | None) -> list[FactRecord]:
    """`privileged` is the set of ids Microsoft flags isPrivileged (None when not collected)."""
    facts = []
    for item in pages.items():
        role_id = item.required("id")
        template = item.text("templateId") or role_id
        facts.append(FactRecord("role_definition", role_id, {
            "id": role_id, "template_id": template, "name": item.required("displayName"),
            "description": item.text("description"), "builtin": item.flag("isBuiltIn"),
            "enabled": item.flag("isEnabled"),
            "privileged": None if privileged is None else (role_id in privileged or template in privileged),
            "actions": sorted({a for perm in item.get("rolePermissions", [])
                               for a in perm.get("allowedResourceActions") or []}),
        }, role_id=role_id))
    return facts


def privileged_ids(pages: DatasetPages) -> set[str]:
    ids = set()
    for item in pages.items():
        if item.get("isPrivileged", True):
            ids.add(item.required("id"))
            if item.text("templateId"):
                ids.add(item.text("templateId"))
    return ids


def _instance(item: Item, state: str, role_names: dict[str, str]) -> dict[str, Any]:
    principal = item.get("principal")
    role_id = item.required("roleDefinitionId")
    start, end = item.when("startDateTime"), item.when("endDateTime")
    data = {
        "id": item.required("id"), "state": state,
        "principal_id": item.required("principalId"),
        "principal_type": odata_type(principal),
        "principal_name": (principal or {}).get("displayName"),
        "principal_upn": (principal or {}).get("userPrincipalName"),
        "role_id": role_id, "role_name": role_names.get(role_id),
        "scope": item.text("directoryScopeId") or "/",
        "app_scope": item.text("appScopeId"),
        "member_type": item.text("memberType") or "Direct",
        "start": start, "end": end, "permanent": end is None,
        "schedule_id": item.text("roleAssignmentScheduleId") or item.text("roleEligibilityScheduleId"),
    }
    if state == "active":
        data["assignment_type"] = item.text("assignmentType") or "Assigned"
        data["outside_pim"] = start is None
        data["origin_id"] = item.text("roleAssignmentOriginId")
    return data


# role names come from role_definitions: an instance's fact is unchanged when its element and that
# dataset are (FactRecord.depends)
_NAMES = ("role_definitions",)


def role_instances(pages: DatasetPages, state: str, role_names: dict[str, str]
                   ) -> tuple[list[FactRecord], list[dict]]:
    """Active (`state='active'`) or eligible instances -> facts (each built when first used), plus
    the expanded principals."""
    kind = "role_assignment" if state == "active" else "role_eligibility"
    facts, principals = [], []
    for item in pages.items():
        principal_id, role_id = item.required("principalId"), item.required("roleDefinitionId")
        facts.append(FactRecord(kind, item.required("id"), principal_id=principal_id, role_id=role_id,
                                element=item.origin, depends=_NAMES,
                                build=lambda item=item: item.built(_instance, state, role_names)))
        principal = item.get("principal")
        if principal:
            if not isinstance(principal, dict):
                raise item.error("principal", f"expected an object, found {type(principal).__name__}")
            expanded = principal_from_expand(principal)
            if expanded:
                principals.append(expanded)
    return facts, principals


def direct_assignments(pages: DatasetPages, role_names: dict[str, str]) -> list[FactRecord]:
    facts = []
    for item in pages.items():
        role_id = item.required("roleDefinitionId")
        facts.append(FactRecord("direct_role_assignment", item.required("id"), {
            "id": item.required("id"), "principal_id": item.required("principalId"),
            "role_id": role_id, "role_name": role_names.get(role_id),
            "scope": item.text("directoryScopeId") or "/",
        }, principal_id=item.required("principalId"), role_id=role_id))
    return facts


def requests(pages: DatasetPages, role_names: dict[str, str]) -> list[EventRecord]:
    """Activation/assignment requests. A request changes status over time, so each status
    observed is its own immutable event (`<id>:<status>`)."""
    events = []
    for item in pages.items():
        schedule = item.get("scheduleInfo", {})
        expiration = schedule.get("expiration") or {}
        ticket = item.get("ticketInfo", {})
        role_id = item.required("roleDefinitionId")
        created = item.when("createdDateTime")
        status = item.text("status") or "Unknown"
        events.append(EventRecord("role_request", f"{item.required('id')}:{status}",
                                  parse_iso(item.required("createdDateTime")), {
            "id": item.required("id"), "action": item.text("action"), "status": status,
            "principal_id": item.required("principalId"), "role_id": role_id,
            "role_name": role_names.get(role_id), "scope": item.text("directoryScopeId"),
            "created": created, "completed": item.when("completedDateTime"),
            "justification": item.text("justification"),
            "ticket": ticket.get("ticketNumber"), "ticket_system": ticket.get("ticketSystem"),
            "start": item.when("startDateTime", schedule),
            "end": item.when("endDateTime", expiration),
            "duration": expiration.get("duration"), "approval_id": item.text("approvalId"),
            "created_by": ((item.get("createdBy") or {}).get("user") or {}).get("id"),
        }, principal_id=item.required("principalId"), role_id=role_id))
    return events


def alerts(pages: DatasetPages) -> list[FactRecord]:
    return [FactRecord("pim_alert", item.required("id"), {
        "id": item.required("id"), "definition": item.text("alertDefinitionId"),
        "active": item.flag("isActive"), "incidents": item.get("incidentCount"),
        "severity": (item.get("alertDefinition") or {}).get("severityLevel"),
        "last_modified": item.when("lastModifiedDateTime"),  # lastScannedDateTime changes every scan
    }) for item in pages.items()]
