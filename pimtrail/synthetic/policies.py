"""PIM role settings, PIM for Groups settings, Conditional Access, contexts and strengths.

Settings follow the tiers of the default profile, with a few deliberate gaps so that the policy
controls have something to find (one tier-0 role without approval, one tier-1 role without MFA).
"""

from __future__ import annotations

from typing import Any

from .presets import Role, context_url
from .tenant import Tenant

LAX_TIER0 = "Application Administrator"  # no approval, 8 h: a finding
LAX_TIER1 = "Intune Administrator"  # no MFA: a finding
PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"


def _target(caller: str, level: str) -> dict[str, Any]:
    return {"caller": caller, "operations": ["all"], "level": level, "inheritableSettings": [], "enforcedSettings": []}


def _expiration(rule_id: str, caller: str, level: str, required: bool, maximum: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule", "id": rule_id,
            "isExpirationRequired": required, "maximumDuration": maximum, "target": _target(caller, level)}


def _enablement(rule_id: str, caller: str, level: str, enabled: list[str]) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyEnablementRule", "id": rule_id,
            "enabledRules": enabled, "target": _target(caller, level)}


def _notifications(caller: str, level: str, recipients: list[str]) -> list[dict[str, Any]]:
    return [{"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyNotificationRule",
             "id": f"Notification_{who}_{caller}_{level}", "notificationType": "Email", "recipientType": who,
             "notificationLevel": "All", "isDefaultRecipientsEnabled": True,
             "notificationRecipients": list(recipients) if who == "Admin" else [], "target": _target(caller, level)}
            for who in ("Admin", "Requestor", "Approver")]


def settings(role: Role) -> dict[str, Any]:
    tier = role.tier
    out = {"max": ("PT1H", "PT4H", "PT8H")[tier], "requires": ["MultiFactorAuthentication", "Justification"],
           "approval": tier == 0, "context": "c1" if tier == 0 else None, "permanent_eligible": tier == 2,
           "permanent_active": tier != 0}
    if role.name == LAX_TIER0:
        out.update(max="PT8H", approval=False, context=None)
    if role.name == LAX_TIER1:
        out.update(requires=["Justification"])
    if tier == 2:
        out.update(requires=[])
    return out


def rules(t: Tenant, st: dict[str, Any]) -> list[dict[str, Any]]:
    approvers = [{"@odata.type": "#microsoft.graph.singleUser", "userId": t.user_id(u), "description": t.user_name(u)[0]}
                 for u in approver_slots(t)] if st["approval"] else []
    admins = [f"pim-alerts@{t.domain}"]
    return [
        _expiration("Expiration_Admin_Eligibility", "Admin", "Eligibility", not st["permanent_eligible"], "P365D"),
        _enablement("Enablement_Admin_Eligibility", "Admin", "Eligibility", []),
        *_notifications("Admin", "Eligibility", admins),
        _expiration("Expiration_Admin_Assignment", "Admin", "Assignment", not st["permanent_active"], "P180D"),
        _enablement("Enablement_Admin_Assignment", "Admin", "Assignment", ["Justification"]),
        *_notifications("Admin", "Assignment", admins),
        _expiration("Expiration_EndUser_Assignment", "EndUser", "Assignment", True, st["max"]),
        _enablement("Enablement_EndUser_Assignment", "EndUser", "Assignment", list(st["requires"])),
        {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyApprovalRule", "id": "Approval_EndUser_Assignment",
         "target": _target("EndUser", "Assignment"),
         "setting": {"isApprovalRequired": st["approval"], "isApprovalRequiredForExtension": False,
                     "isRequestorJustificationRequired": "Justification" in st["requires"],
                     "approvalMode": "SingleStage",
                     "approvalStages": [{"approvalStageTimeOutInDays": 1, "isApproverJustificationRequired": True,
                                         "escalationTimeInMinutes": 0, "isEscalationEnabled": False,
                                         "primaryApprovers": approvers, "escalationApprovers": []}]}},
        {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyAuthenticationContextRule",
         "id": "AuthenticationContext_EndUser_Assignment", "isEnabled": bool(st["context"]),
         "claimValue": st["context"], "target": _target("EndUser", "Assignment")},
        *_notifications("EndUser", "Assignment", admins),
    ]


def approver_slots(t: Tenant) -> tuple[int, ...]:
    """Privileged users who approve tier-0 activations."""
    return tuple(range(5, min(8, t.p.privileged_users)))


def _assignment(t: Tenant, scope_id: str, scope_type: str, role_id: str, st: dict[str, Any], seed: str) -> dict[str, Any]:
    if scope_type == "Group":
        policy_id = f"Group_{scope_id}_{t.ids.guid('policy', seed)}"
    else:
        policy_id = f"DirectoryRole_{t.tenant_id}_{t.ids.guid('policy', seed)}"
    return {"id": f"{policy_id}_{role_id}", "policyId": policy_id, "scopeId": scope_id, "scopeType": scope_type,
            "roleDefinitionId": role_id,
            "policy": {"id": policy_id, "displayName": scope_type, "description": scope_type,
                       "isOrganizationDefault": False, "scopeId": scope_id, "scopeType": scope_type,
                       "lastModifiedDateTime": None, "lastModifiedBy": {"displayName": None, "id": None},
                       "rules": rules(t, st)}}


def role_policy_assignments(t: Tenant) -> list[dict[str, Any]]:
    return [_assignment(t, "/", "DirectoryRole", r.id, settings(r), r.id) for r in sorted(t.roles, key=lambda r: r.name)]


def group_policy_assignments(t: Tenant, g: int) -> list[dict[str, Any]]:
    st = {"max": "PT4H", "requires": ["MultiFactorAuthentication", "Justification"], "approval": False,
          "context": None, "permanent_eligible": False, "permanent_active": True}
    return [_assignment(t, t.group_id(g), "Group", access, st, f"group/{g}/{access}") for access in ("member", "owner")]


# ---------------------------------------------------------------------- Conditional Access
def authentication_strengths() -> list[dict[str, Any]]:
    built_in = [("00000000-0000-0000-0000-000000000002", "Multifactor authentication",
                 ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "password,microsoftAuthenticatorPush",
                  "password,softwareOath", "password,sms"]),
                ("00000000-0000-0000-0000-000000000003", "Passwordless MFA",
                 ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "microsoftAuthenticatorPush,deviceBasedPush"]),
                (PHISHING_RESISTANT, "Phishing-resistant MFA", ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"])]
    return [{"id": sid, "createdDateTime": "2021-12-01T00:00:00Z", "modifiedDateTime": "2021-12-01T00:00:00Z",
             "displayName": name, "description": f"Built-in: {name}", "policyType": "builtIn",
             "requirementsSatisfied": "mfa", "allowedCombinations": combos,
             "combinationConfigurations@odata.context": context_url(
                 f"policies/authenticationStrengthPolicies('{sid}')/combinationConfigurations"),
             "combinationConfigurations": []} for sid, name, combos in built_in]


def authentication_contexts() -> list[dict[str, Any]]:
    return [{"id": "c1", "displayName": "Privileged role activation", "description": "Phishing-resistant MFA",
             "isAvailable": True},
            {"id": "c2", "displayName": "Sensitive data", "description": "Compliant device", "isAvailable": True}]


def ca_policies(t: Tenant) -> list[dict[str, Any]]:
    strength = {k: v for k, v in authentication_strengths()[2].items() if not k.startswith("combinationConfigurations")}
    tier0 = [r.id for r in t.roles if r.tier == 0]
    specs = [("admins-phishing-resistant", "Require phishing-resistant MFA for admin roles", "enabled", tier0, [], strength),
             ("pim-context", "PIM activation: authentication context c1", "enabled", [], ["c1"], strength),
             ("all-users-mfa", "Require MFA for all users", "enabled", [], [], None),
             ("block-legacy", "Block legacy authentication", "enabled", [], [], None),
             ("report-only-risky", "Risky sign-ins (report only)", "enabledForReportingButNotEnforced", [], [], None)]
    out = []
    for key, name, state, roles, contexts, strength_ref in specs:
        pid = t.ids.guid("ca-policy", key)
        out.append({
            "id": pid, "templateId": None, "displayName": name, "createdDateTime": "2024-02-01T10:00:00Z",
            "modifiedDateTime": None, "state": state, "sessionControls": None,
            "conditions": {
                "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": ["all"],
                "servicePrincipalRiskLevels": [], "platforms": None, "locations": None, "devices": None,
                "clientApplications": None,
                "applications": {"includeApplications": [] if contexts else ["All"], "excludeApplications": [],
                                 "includeUserActions": [], "includeAuthenticationContextClassReferences": contexts,
                                 "applicationFilter": None},
                "users": {"includeUsers": [] if roles else ["All"], "excludeUsers": [t.user_id(0), t.user_id(1)],
                          "includeGroups": [], "excludeGroups": [], "includeRoles": roles, "excludeRoles": [],
                          "includeGuestsOrExternalUsers": None, "excludeGuestsOrExternalUsers": None}},
            "grantControls": {"operator": "OR", "builtInControls": [] if strength_ref else ["mfa"],
                              "customAuthenticationFactors": [], "termsOfUse": [],
                              "authenticationStrength@odata.context": context_url(
                                  f"identity/conditionalAccess/policies('{pid}')/grantControls/authenticationStrength/$entity"),
                              "authenticationStrength": strength_ref},
        })
    return out
