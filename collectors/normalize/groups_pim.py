"""PIM for Groups: members and owners, eligible or active, per group."""

from __future__ import annotations

from pimtrail.model import FactRecord

from .base import DatasetPages


def group_instances(pages: DatasetPages, state: str) -> list[FactRecord]:
    kind = "group_pim_assignment" if state == "active" else "group_pim_eligibility"
    facts = []
    for item in pages.items():
        group_id = item.text("groupId") or item.parent
        start, end = item.when("startDateTime"), item.when("endDateTime")
        principal_id = item.required("principalId")
        data = {
            "id": item.required("id"), "state": state, "group_id": group_id,
            "principal_id": principal_id, "access": item.text("accessId") or "member",
            "member_type": item.text("memberType") or "Direct",
            "start": start, "end": end, "permanent": end is None,
        }
        if state == "active":
            data["assignment_type"] = item.text("assignmentType") or "Assigned"
            data["outside_pim"] = start is None
        facts.append(FactRecord(kind, data["id"], data, principal_id=principal_id, group_id=group_id))
    return facts
