"""Role management: definitions, active and eligible schedule instances, direct assignments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .directory import principal_ref
from .ids import iso, role_assignment_id
from .scenario import Activation, Assignment
from .timeline import Timeline


class RoleManagement:
    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.s = tl.s

    def roles(self) -> list:
        return sorted(self.s.roles.values(), key=lambda r: r.name)

    def definitions(self) -> list[dict[str, Any]]:
        return [{
            "id": r.id,
            "description": r.description,
            "displayName": r.name,
            "isBuiltIn": True,
            "isEnabled": True,
            "resourceScopes": ["/"],
            "templateId": r.id,
            "version": "1",
            "rolePermissions": [{"allowedResourceActions": list(r.actions), "condition": None,
                                 "excludedResourceActions": []}],
        } for r in self.roles()]

    def privileged_definitions(self) -> list[dict[str, Any]]:
        """Beta, `$filter=isPrivileged eq true&$select=id,displayName,isPrivileged`."""
        return [{"id": r.id, "displayName": r.name, "isPrivileged": True} for r in self.roles() if r.privileged]

    # ------------------------------------------------------------------ schedules
    def schedule_id(self, a: Assignment) -> str:
        if a.via == "outside_pim":  # no PIM schedule: Entra reuses the assignment id
            return role_assignment_id(a.role.id, a.who.id)
        return self.s.ids.guid("role-schedule", a.seed)

    def _activation_pairs(self, t: datetime) -> list[tuple[Activation, Assignment]]:
        pairs = []
        for act in self.tl.activations_at(t):
            if act.role is not None:
                pairs.append((act, self.tl.eligibility(act.who, act.role, act.start)))
        return pairs

    def assignment_instances(self, t: datetime) -> list[dict[str, Any]]:
        out = []
        for a in self.tl.assignments_at(t, "active"):
            assignment_id = role_assignment_id(a.role.id, a.who.id)
            out.append({
                "id": assignment_id,
                "principalId": a.who.id,
                "roleDefinitionId": a.role.id,
                "directoryScopeId": "/",
                "appScopeId": None,
                "startDateTime": iso(a.start) if a.via == "pim" else None,
                "endDateTime": iso(a.expires),
                "assignmentType": "Assigned",
                "memberType": "Group" if a.who.kind == "group" else "Direct",
                "roleAssignmentOriginId": assignment_id,
                "roleAssignmentScheduleId": self.schedule_id(a),
                "principal": principal_ref(a.who),
            })
        for act, elig in self._activation_pairs(t):
            out.append({
                "id": role_assignment_id(act.role.id, act.who.id),
                "principalId": act.who.id,
                "roleDefinitionId": act.role.id,
                "directoryScopeId": "/",
                "appScopeId": None,
                "startDateTime": iso(act.start),
                "endDateTime": iso(act.end),
                "assignmentType": "Activated",
                "memberType": "Direct",
                "roleAssignmentOriginId": self.schedule_id(elig),
                "roleAssignmentScheduleId": self.s.ids.guid("activation-schedule", act.seed),
                "principal": principal_ref(act.who),
            })
        return sorted(out, key=_order)

    def eligibility_instances(self, t: datetime) -> list[dict[str, Any]]:
        out = []
        for a in self.tl.assignments_at(t, "eligible"):
            out.append({
                "id": role_assignment_id(a.role.id, a.who.id) + "-e",
                "principalId": a.who.id,
                "roleDefinitionId": a.role.id,
                "directoryScopeId": "/",
                "appScopeId": None,
                "startDateTime": iso(a.start),
                "endDateTime": iso(a.expires),
                "memberType": "Group" if a.who.kind == "group" else "Direct",
                "roleEligibilityScheduleId": self.schedule_id(a),
                "principal": principal_ref(a.who),
            })
        return sorted(out, key=_order)

    def assignments(self, t: datetime) -> list[dict[str, Any]]:
        """`/roleManagement/directory/roleAssignments`: every active assignment, activated or not."""
        out = [{"id": i["id"], "principalId": i["principalId"], "principalOrganizationId": self.s.tenant["id"],
                "directoryScopeId": "/", "roleDefinitionId": i["roleDefinitionId"]}
               for i in self.assignment_instances(t)]
        return sorted(out, key=lambda x: x["id"])

    def policy_assignments(self, t: datetime) -> list[dict[str, Any]]:
        return [self.tl.policies.assignment(r.key, t) for r in self.roles()]


def _order(item: dict[str, Any]) -> tuple[str, str]:
    return (item["roleDefinitionId"], item["principal"]["displayName"])
