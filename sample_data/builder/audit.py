"""The directory audit log (categories RoleManagement and GroupManagement).

Every event is derived from a scenario fact: activations, assignment changes (including the
ones an access review applied), group membership changes and PIM setting changes. Events of
one operation share a correlationId.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from .ids import iso
from .policies import Change
from .scenario import Activation, Assignment, GroupLink, Principal, Role
from .timeline import Timeline

MS_PIM_APP_ID = "01fc33a7-78ba-4d2f-a4b7-768e336e890e"  # the first-party "MS-PIM" application


class AuditLog:
    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.s = tl.s
        self.events: list[dict[str, Any]] = []
        for act in self.s.activations:
            self._activation(act)
        for a in self.s.assignments:
            self._assignment(a)
        for link in self.s.group_links:
            self._group_link(link)
        for change in tl.policies.changes():
            self._setting(change)
        self.events.sort(key=lambda e: (e["activityDateTime"], e["id"]), reverse=True)
        ids = [e["id"] for e in self.events]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate audit event ids")

    def window(self, t: datetime) -> list[dict[str, Any]]:
        start = iso(t - timedelta(days=self.s.collection["audit_window_days"]))
        end = iso(t)
        return [e for e in self.events if start <= e["activityDateTime"] < end]

    # ------------------------------------------------------------------ shapes
    def _user(self, p: Principal, ip: str | None = None) -> dict[str, Any]:
        return {"user": {"id": p.id, "displayName": p.name, "userPrincipalName": p.upn,
                         "ipAddress": ip or self.s.tenant["office_ip"]}, "app": None}

    def _app(self) -> dict[str, Any]:
        return {"app": {"appId": MS_PIM_APP_ID, "displayName": "MS-PIM",
                        "servicePrincipalId": self.s.ids.guid("sp", "ms-pim"), "servicePrincipalName": None},
                "user": None}

    @staticmethod
    def _target(kind: str, id_: str, name: str | None, upn: str | None = None,
                modified: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"id": id_, "displayName": name, "type": kind, "userPrincipalName": upn, "groupType": None,
                "modifiedProperties": modified or []}

    def _principal_target(self, p: Principal) -> dict[str, Any]:
        kind = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}[p.kind]
        return self._target(kind, p.id, p.name, p.upn if p.kind == "user" else None)

    def _pim_targets(self, role: Role | None, group: Principal | None, access: str, request: str,
                     who: Principal) -> list[dict[str, Any]]:
        """Role, request, principal - and for PIM for Groups the group last (the principal comes first)."""
        if role is not None:
            first = self._target("Role", role.id, role.name)
        else:
            first = self._target("Role", access, access.capitalize())
        out = [first, self._target("Request", request, None), self._principal_target(who)]
        if group is not None:
            out.append(self._principal_target(group))
        return out

    @staticmethod
    def _details(role: Role | None, **times: datetime | None) -> list[dict[str, str]]:
        out = []
        if role is not None:
            out = [{"key": "RoleDefinitionOriginId", "value": role.id},
                   {"key": "RoleDefinitionOriginType", "value": "BuiltInRole"},
                   {"key": "TemplateId", "value": role.id}]
        for key, value in times.items():
            if value is not None:
                out.append({"key": key, "value": iso(value)})
        return out

    def _add(self, seed: str, when: datetime, activity: str, category: str, initiator: dict[str, Any],
             targets: list[dict[str, Any]], correlation: str, reason: str = "", op: str = "Add",
             details: list[dict[str, str]] | None = None, service: str = "PIM") -> None:
        self.events.append({
            "id": self.s.ids.guid("audit", seed, activity),
            "category": category,
            "correlationId": correlation,
            "result": "success",
            "resultReason": reason,
            "activityDisplayName": activity,
            "activityDateTime": iso(when),
            "loggedByService": service,
            "operationType": op,
            "initiatedBy": initiator,
            "targetResources": targets,
            "additionalDetails": details or [],
        })

    # ------------------------------------------------------------------ sources
    def _activation(self, act: Activation) -> None:
        category = "RoleManagement" if act.role is not None else "GroupManagement"
        corr = self.s.ids.guid("correlation", act.seed)
        targets = self._pim_targets(act.role, act.group, "member", self.s.ids.guid("request", act.seed), act.who)
        base = self._details(act.role)
        self._add(act.seed, act.at, "Add member to role requested (PIM activation)", category,
                  self._user(act.who, act.ip), targets, corr, act.why, details=base)
        if act.approver is not None:
            verdict = "approved" if act.granted else "denied"
            self._add(act.seed, act.decided, f"Add member to role request {verdict} (PIM activation)", category,
                      self._user(act.approver, act.approver_ip), targets, corr,
                      act.decision_note or verdict.capitalize(), op="Update", details=base)
        if not act.granted:
            return
        window = self._details(act.role, StartTime=act.start, ExpirationTime=act.end)
        self._add(act.seed, act.start, "Add member to role completed (PIM activation)", category,
                  self._user(act.who, act.ip), targets, corr, act.why, details=window)
        self._add(act.seed, act.end, "Remove member from role (PIM activation expired)", category,
                  self._app(), targets, corr, "Activation expired", op="Delete", details=window)

    def _assignment(self, a: Assignment) -> None:
        span = "permanent" if a.expires is None else "timebound"
        targets = [self._target("Role", a.role.id, a.role.name),
                   self._target("Request", self.s.ids.guid("request", a.seed), None),
                   self._principal_target(a.who)]
        if a.via == "outside_pim":
            added = "Add member to role outside of PIM (permanent)"
            removed = "Remove permanent direct role assignment"
        elif a.type == "active":
            added = f"Add member to role in PIM completed ({span})"
            removed = f"Remove member from role in PIM completed ({span})"
        else:
            added = f"Add eligible member to role in PIM completed ({span})"
            removed = f"Remove eligible member from role in PIM completed ({span})"
        initiator = self._user(a.by) if a.by else self._app()
        self._add(a.seed, a.start, added, "RoleManagement", initiator, targets,
                  self.s.ids.guid("correlation", a.seed, "add"), a.reason,
                  details=self._details(a.role, StartTime=a.start if a.via == "pim" else None,
                                        ExpirationTime=a.expires))
        if a.until is not None and (a.expires is None or a.until < a.expires):
            initiator = self._user(a.until_by) if a.until_by else self._app()
            self._add(a.seed, a.until, removed, "RoleManagement", initiator, targets,
                      self.s.ids.guid("correlation", a.seed, "remove"), a.until_reason, op="Delete",
                      details=self._details(a.role))

    def _group_link(self, link: GroupLink) -> None:
        seed = f"group-link/{link.group.key}/{link.access}/{link.eligible}/{link.who.key}/{iso(link.start)}"
        initiator = self._user(link.by) if link.by else self._app()
        if link.eligible or link.access == "owner":  # PIM for Groups assignments
            span = "permanent" if link.expires is None else "timebound"
            kind = "eligible member" if link.eligible else "member"
            targets = self._pim_targets(None, link.group, link.access, self.s.ids.guid("request", seed), link.who)
            self._add(seed, link.start, f"Add {kind} to role in PIM completed ({span})", "GroupManagement",
                      initiator, targets, self.s.ids.guid("correlation", seed), link.reason,
                      details=self._details(None, StartTime=link.start, ExpirationTime=link.expires))
            return
        for when, activity, op in ((link.start, "Add member to group", "Assign"),
                                   (link.until, "Remove member from group", "Unassign")):
            if when is None:
                continue
            value = json.dumps(link.group.id)
            name = json.dumps(link.group.name)
            added = activity.startswith("Add")
            modified = [{"displayName": "Group.ObjectID", "oldValue": None if added else value,
                         "newValue": value if added else None},
                        {"displayName": "Group.DisplayName", "oldValue": None if added else name,
                         "newValue": name if added else None}]
            targets = [self._target("User", link.who.id, None, link.who.upn, modified),
                       self._principal_target(link.group)]
            self._add(seed, when, activity, "GroupManagement", initiator, targets,
                      self.s.ids.guid("correlation", seed, activity), link.reason if not added else "",
                      op=op, service="Core Directory")

    def _setting(self, change: Change) -> None:
        seed = f"setting/{change.scope}/{iso(change.at)}"
        modified = [{"displayName": prop, "oldValue": json.dumps(self._readable(old)),
                     "newValue": json.dumps(self._readable(new))} for prop, old, new in change.diff]
        if change.scope.startswith("group:"):
            group_key, _, access = change.scope[len("group:"):].partition("/")
            group = self.s.principals[group_key]
            targets = [self._target("Role", access, access.capitalize(), modified=modified),
                       self._principal_target(group)]
            category = "GroupManagement"
        else:
            role = self.s.roles[change.scope]
            targets = [self._target("Role", role.id, role.name, modified=modified)]
            category = "RoleManagement"
        targets.append(self._target("Other", self.tl.policies.policy_id(change.scope), "Policy"))
        self._add(seed, change.at, "Update role setting in PIM", category, self._user(change.by), targets,
                  self.s.ids.guid("correlation", seed), change.name, op="Update")

    def _readable(self, value: Any) -> Any:
        if isinstance(value, list) and value and all(isinstance(v, str) and v in self.s.principals for v in value):
            return [self.s.principals[v].name for v in value]
        return value
