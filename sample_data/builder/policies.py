"""PIM role settings: which settings hold when, and their Graph shape.

A policy *scope* is a directory role key (``global_admin``) or a PIM for Groups access
(``group:oncall/member``). Scenario entries without ``effective`` are the settings as found;
later entries change only what they name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .ids import at_utc, duration, iso
from .scenario import Principal, Scenario

SETTING_KEYS = {
    "activation_max": "Expiration_EndUser_Assignment.maximumDuration",
    "activation_requires": "Enablement_EndUser_Assignment.enabledRules",
    "approval": "Approval_EndUser_Assignment.setting.isApprovalRequired",
    "approvers": "Approval_EndUser_Assignment.setting.approvalStages.primaryApprovers",
    "auth_context": "AuthenticationContext_EndUser_Assignment.claimValue",
    "eligible_expiry": "Expiration_Admin_Eligibility.maximumDuration",
    "eligible_expiry_required": "Expiration_Admin_Eligibility.isExpirationRequired",
    "active_expiry": "Expiration_Admin_Assignment.maximumDuration",
    "active_expiry_required": "Expiration_Admin_Assignment.isExpirationRequired",
    "active_requires": "Enablement_Admin_Assignment.enabledRules",
    "notify_activation_to": "Notification_Admin_EndUser_Assignment.notificationRecipients",
    "notify_eligible_to": "Notification_Admin_Admin_Eligibility.notificationRecipients",
    "notify_assignment_to": "Notification_Admin_Admin_Assignment.notificationRecipients",
}
_ENTRY_KEYS = set(SETTING_KEYS) | {"name", "roles", "effective", "by"}


@dataclass
class Change:
    at: datetime
    by: Principal
    scope: str
    name: str
    diff: list[tuple[str, Any, Any]]  # (rule property, old, new)


class Policies:
    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.entries: list[dict[str, Any]] = []
        for n, entry in enumerate(s.raw.get("policy", [])):
            unknown = set(entry) - _ENTRY_KEYS
            if unknown:
                raise ValueError(f"policy {n}: unknown settings {sorted(unknown)}")
            for scope in entry["roles"]:
                if scope != "*" and not scope.startswith("group:"):
                    s.role_by_key(scope)
            effective = at_utc(entry["effective"]) if "effective" in entry else None
            if effective is not None and "by" not in entry:
                raise ValueError(f"policy {n}: a change needs `by`")
            self.entries.append(dict(entry, effective=effective, order=n))
        if not self.entries or self.entries[0]["roles"] != ["*"] or self.entries[0]["effective"]:
            raise ValueError("the first policy entry must be the settings as found, for roles ['*']")
        missing = set(SETTING_KEYS) - set(self.entries[0])
        if missing:
            raise ValueError(f"the settings as found must set {sorted(missing)}")
        self.group_scopes = sorted({sc for e in self.entries for sc in e["roles"] if sc.startswith("group:")})
        for scope in self.group_scopes:
            key, _, access = scope[len("group:"):].partition("/")
            s.ref(key, ("group",))
            if access not in ("member", "owner"):
                raise ValueError(f"bad PIM for Groups scope {scope!r}")

    @staticmethod
    def _applies(entry: dict[str, Any], scope: str) -> bool:
        return "*" in entry["roles"] or scope in entry["roles"]

    def _ordered(self, scope: str) -> list[dict[str, Any]]:
        found = [e for e in self.entries if self._applies(e, scope)]
        return sorted(found, key=lambda e: (e["effective"] is not None, e["effective"] or 0, e["order"]))

    def settings_at(self, scope: str, t: datetime) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The merged settings at `t` and the last change entry (None: never modified)."""
        merged: dict[str, Any] = {}
        last = None
        for entry in self._ordered(scope):
            if entry["effective"] is not None and entry["effective"] > t:
                break
            merged.update({k: v for k, v in entry.items() if k in SETTING_KEYS})
            if entry["effective"] is not None:
                last = entry
        return merged, last

    def changes(self) -> list[Change]:
        out = []
        scopes = [r for r in self.s.roles] + self.group_scopes
        for scope in scopes:
            for entry in self._ordered(scope):
                if entry["effective"] is None:
                    continue
                t = entry["effective"]
                before, _ = self.settings_at(scope, t - _EPSILON)
                after, _ = self.settings_at(scope, t)
                diff = [(SETTING_KEYS[k], before.get(k), after[k]) for k in SETTING_KEYS
                        if before.get(k) != after.get(k)]
                if diff:
                    out.append(Change(t, self.s.ref(entry["by"], ("user",)), scope, entry["name"], diff))
        return sorted(out, key=lambda c: (c.at, c.scope))

    # ---------------------------------------------------------------- Graph shapes
    def policy_id(self, scope: str) -> str:
        seed = self.s.ids.guid("role-policy", scope)
        if scope.startswith("group:"):
            group = self.s.principals[scope[len("group:"):].split("/")[0]]
            return f"Group_{group.id}_{seed}"
        return f"DirectoryRole_{self.s.ids.tenant_id}_{seed}"

    def assignment(self, scope: str, t: datetime) -> dict[str, Any]:
        """One unifiedRoleManagementPolicyAssignment with its policy and rules expanded."""
        settings, last = self.settings_at(scope, t)
        policy_id = self.policy_id(scope)
        if scope.startswith("group:"):
            group_key, _, access = scope[len("group:"):].partition("/")
            scope_id, scope_type, role_id = self.s.principals[group_key].id, "Group", access
        else:
            scope_id, scope_type, role_id = "/", "DirectoryRole", self.s.roles[scope].id
        by = self.s.ref(last["by"], ("user",)) if last else None
        return {
            "id": f"{policy_id}_{role_id}",
            "policyId": policy_id,
            "scopeId": scope_id,
            "scopeType": scope_type,
            "roleDefinitionId": role_id,
            "policy": {
                "id": policy_id,
                "displayName": scope_type,
                "description": scope_type,
                "isOrganizationDefault": False,
                "scopeId": scope_id,
                "scopeType": scope_type,
                "lastModifiedDateTime": iso(last["effective"]) if last else None,
                "lastModifiedBy": {"displayName": by.name if by else None, "id": by.id if by else None},
                "rules": self.rules(settings),
            },
        }

    def rules(self, st: dict[str, Any]) -> list[dict[str, Any]]:
        for key in ("activation_max", "eligible_expiry", "active_expiry"):
            duration(st[key])  # reject malformed durations early
        approvers = [{"@odata.type": "#microsoft.graph.singleUser", "userId": p.id, "description": p.name}
                     for p in (self.s.ref(k, ("user",)) for k in st["approvers"])]
        rules = [
            _expiration("Expiration_Admin_Eligibility", "Admin", "Eligibility",
                        st["eligible_expiry_required"], st["eligible_expiry"]),
            _enablement("Enablement_Admin_Eligibility", "Admin", "Eligibility", []),
            *_notifications("Admin", "Eligibility", st["notify_eligible_to"]),
            _expiration("Expiration_Admin_Assignment", "Admin", "Assignment",
                        st["active_expiry_required"], st["active_expiry"]),
            _enablement("Enablement_Admin_Assignment", "Admin", "Assignment", st["active_requires"]),
            *_notifications("Admin", "Assignment", st["notify_assignment_to"]),
            _expiration("Expiration_EndUser_Assignment", "EndUser", "Assignment", True, st["activation_max"]),
            _enablement("Enablement_EndUser_Assignment", "EndUser", "Assignment", st["activation_requires"]),
            {
                "@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyApprovalRule",
                "id": "Approval_EndUser_Assignment",
                "target": _target("EndUser", "Assignment"),
                "setting": {
                    "isApprovalRequired": bool(st["approval"]),
                    "isApprovalRequiredForExtension": False,
                    "isRequestorJustificationRequired": "Justification" in st["activation_requires"],
                    "approvalMode": "SingleStage",
                    "approvalStages": [{
                        "approvalStageTimeOutInDays": 1,
                        "isApproverJustificationRequired": True,
                        "escalationTimeInMinutes": 0,
                        "isEscalationEnabled": False,
                        "primaryApprovers": approvers,
                        "escalationApprovers": [],
                    }],
                },
            },
            {
                "@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyAuthenticationContextRule",
                "id": "AuthenticationContext_EndUser_Assignment",
                "isEnabled": bool(st["auth_context"]),
                "claimValue": st["auth_context"] or None,
                "target": _target("EndUser", "Assignment"),
            },
            *_notifications("EndUser", "Assignment", st["notify_activation_to"]),
        ]
        return rules


_EPSILON = timedelta(seconds=1)


def _target(caller: str, level: str) -> dict[str, Any]:
    return {"caller": caller, "operations": ["all"], "level": level,
            "inheritableSettings": [], "enforcedSettings": []}


def _expiration(rule_id: str, caller: str, level: str, required: bool, maximum: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule", "id": rule_id,
            "isExpirationRequired": required, "maximumDuration": maximum, "target": _target(caller, level)}


def _enablement(rule_id: str, caller: str, level: str, enabled: list[str]) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyEnablementRule", "id": rule_id,
            "enabledRules": list(enabled), "target": _target(caller, level)}


def _notifications(caller: str, level: str, admin_recipients: list[str]) -> list[dict[str, Any]]:
    out = []
    for recipient in ("Admin", "Requestor", "Approver"):
        out.append({
            "@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyNotificationRule",
            "id": f"Notification_{recipient}_{caller}_{level}",
            "notificationType": "Email",
            "recipientType": recipient,
            "notificationLevel": "All",
            "isDefaultRecipientsEnabled": True,
            "notificationRecipients": list(admin_recipients) if recipient == "Admin" else [],
            "target": _target(caller, level),
        })
    return out
