"""A small tenant that passes every control: the baseline that control tests change one thing in.

`compliant(collected_at)` returns dataset name -> Graph body (like tests/exports.py) plus the config
(`_config`, the pimtrail.toml as a dict). Times are relative to `collected_at`, so the same tenant
works for any snapshot date.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pimtrail.timeutil import iso, parse_iso

TENANT = "22222222-3333-4444-8555-666666666666"
GA = "62e90394-69f5-4237-9190-012177145e10"
SECURITY_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
ROLES = {GA: "Global Administrator", SECURITY_ADMIN: "Security Administrator",
         EXCHANGE_ADMIN: "Exchange Administrator", GLOBAL_READER: "Global Reader"}

BG1, BG2 = "b9000000-0000-4000-8000-000000000001", "b9000000-0000-4000-8000-000000000002"
ALICE = "a1000000-0000-4000-8000-000000000003"  # eligible Security Administrator (tier 0)
BOB = "b0000000-0000-4000-8000-000000000004"    # eligible Exchange Administrator (tier 1)
CAROL = "c0000000-0000-4000-8000-000000000005"  # eligible Global Reader (tier 2)
DAN = "d0000000-0000-4000-8000-000000000006"    # eligible member of the Exchange ops group
ERIN = "e0000000-0000-4000-8000-000000000007"   # approver, holds no role
FRANK = "f0000000-0000-4000-8000-000000000008"  # denied in the last review, no longer holds a role
OPS_GROUP = "9a000000-0000-4000-8000-000000000009"
USERS = {BG1: "bg1", BG2: "bg2", ALICE: "alice", BOB: "bob", CAROL: "carol", DAN: "dan", ERIN: "erin",
         FRANK: "frank"}
DOMAIN = "contoso-test.example"


def upn(uid: str) -> str:
    return f"{USERS[uid]}@{DOMAIN}"


def at(base: datetime, **delta: float) -> str:
    return iso(base + timedelta(**delta))


def user(uid: str, now: datetime) -> dict[str, Any]:
    return {"id": uid, "displayName": USERS[uid].title(), "userPrincipalName": upn(uid), "userType": "Member",
            "accountEnabled": True, "onPremisesSyncEnabled": None, "createdDateTime": at(now, days=-400)}


# whose sign-in activity a collection asks for: holders and eligible users (directly or through the group), and
# the break-glass accounts (collectors/graph/collector.py)
SIGNED_IN = (ALICE, BG1, BG2, BOB, CAROL, DAN)


def sign_in_activity(uids: tuple[str, ...], now: datetime) -> dict[str, Any]:
    """The `sign_in_activity` dataset: one `id in (...)` request for `uids` (fewer than 15)."""
    request = "/v1.0/users?$filter=id in (" + ",".join(f"'{u}'" for u in uids) + ")&$select=id,signInActivity"
    return {"pages": [{"request": request, "body": {"value": [
        {"id": u, "signInActivity": {"lastSignInDateTime": at(now, days=-2)}} for u in uids]}}]}


def signed_in_on_users(data: dict[str, Any]) -> None:
    """The same tenant as an export without the `sign_in_activity` dataset (written before it existed, or by
    a tool that selects signInActivity on the users) has it: on every user's element."""
    activity = {v["id"]: v["signInActivity"] for p in data.pop("sign_in_activity")["pages"] for v in p["body"]["value"]}
    for item in data["users"]["value"]:
        item["signInActivity"] = activity.get(item["id"], {"lastSignInDateTime": at(parse_iso(
            data["_manifest"]["collected_at"]), days=-2)})


def instance(iid: str, principal: str, role: str, now: datetime, *, end_days: float | None = None,
             start_days: float = -30, kind: str = "user") -> dict[str, Any]:
    body = {"id": iid, "principalId": principal, "roleDefinitionId": role, "directoryScopeId": "/",
            "startDateTime": at(now, days=start_days),
            "endDateTime": None if end_days is None else at(now, days=end_days),
            "memberType": "Direct", "assignmentType": "Assigned",
            "principal": {"@odata.type": f"#microsoft.graph.{kind}", "id": principal,
                          "displayName": USERS.get(principal, "Exchange Ops"),
                          **({"userPrincipalName": upn(principal)} if kind == "user" else {})}}
    return body


def notification(rule_id: str, recipients: list[str]) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyNotificationRule", "id": rule_id,
            "notificationType": "Email", "recipientType": "Admin", "notificationLevel": "All",
            "isDefaultRecipientsEnabled": True, "notificationRecipients": recipients}


def policy(role: str, hours: int, *, mfa: bool, justification: bool, approvers: list[str],
           context: str | None = None, scope: str = "/", scope_type: str = "DirectoryRole") -> dict[str, Any]:
    enabled = [r for r, on in (("MultiFactorAuthentication", mfa and not context), ("Justification", justification)) if on]
    rules = [
        {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule",
         "id": "Expiration_EndUser_Assignment", "isExpirationRequired": True, "maximumDuration": f"PT{hours}H"},
        {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyEnablementRule",
         "id": "Enablement_EndUser_Assignment", "enabledRules": enabled},
        {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyApprovalRule", "id": "Approval_EndUser_Assignment",
         "setting": {"isApprovalRequired": bool(approvers), "approvalStages": [{"primaryApprovers": [
             {"@odata.type": "#microsoft.graph.singleUser", "userId": a, "description": upn(a)} for a in approvers]}]}},
        {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyAuthenticationContextRule",
         "id": "AuthenticationContext_EndUser_Assignment", "isEnabled": bool(context), "claimValue": context},
        {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule",
         "id": "Expiration_Admin_Eligibility", "isExpirationRequired": True, "maximumDuration": "P365D"},
        {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule",
         "id": "Expiration_Admin_Assignment", "isExpirationRequired": True, "maximumDuration": "P180D"},
    ] + [notification(r, ["soc@" + DOMAIN]) for r in (
        "Notification_Admin_Admin_Eligibility", "Notification_Admin_Admin_Assignment",
        "Notification_Admin_EndUser_Assignment")]
    return {"id": f"{scope_type}_{scope}_{role}", "policyId": f"pol-{role}", "scopeId": scope, "scopeType": scope_type,
            "roleDefinitionId": role, "policy": {"id": f"pol-{role}", "lastModifiedDateTime": "2026-01-15T09:00:00Z",
                                                 "rules": rules}}


def audit(aid: str, when: str, activity: str, correlation: str, actor: str, target: str, role: str,
          reason: str = "", **details: str) -> dict[str, Any]:
    return {"id": aid, "category": "RoleManagement", "correlationId": correlation, "result": "success",
            "resultReason": reason, "activityDisplayName": activity, "activityDateTime": when,
            "loggedByService": "PIM", "operationType": "Add",
            "initiatedBy": {"user": {"id": actor, "userPrincipalName": upn(actor)}},
            "targetResources": [{"id": role, "type": "Role", "displayName": ROLES[role]},
                                {"id": target, "type": "User", "userPrincipalName": upn(target)}],
            "additionalDetails": [{"key": k, "value": v} for k, v in details.items()]}


def activation(n: int, who: str, role: str, start: datetime, approver: str | None,
               justification: str = "INC-4711 contain phishing campaign") -> list[dict[str, Any]]:
    corr = f"corr-{n}"
    events = [audit(f"a{n}-req", iso(start - timedelta(minutes=5)), "Add member to role requested (PIM activation)",
                    corr, who, who, role, justification)]
    if approver:
        events.append(audit(f"a{n}-ok", iso(start - timedelta(minutes=2)),
                            "Add member to role request approved (PIM activation)", corr, approver, who, role))
    events.append(audit(f"a{n}-done", iso(start), "Add member to role completed (PIM activation)", corr, who, who,
                        role, justification, StartTime=iso(start), ExpirationTime=iso(start + timedelta(hours=1))))
    return events


def weekday_10am(now: datetime, days_back: int) -> datetime:
    day = now - timedelta(days=days_back)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day.replace(hour=10, minute=0, second=0)


def compliant(collected_at: str = "2026-09-30T06:00:00Z") -> dict[str, Any]:
    now = parse_iso(collected_at)
    review_end = now - timedelta(days=5)
    return {
        "_manifest": {"format": "pimtrail-export/1", "tenant_id": TENANT, "collected_at": collected_at,
                      "source": "manual", "datasets": {}},
        "_config": {"break_glass": {"accounts": [upn(BG1), BG2]}},
        "organization": {"value": [{"id": TENANT, "displayName": "Contoso Test",
                                    "verifiedDomains": [{"name": DOMAIN, "isDefault": True}]}]},
        "subscribed_skus": {"value": [{"skuId": "eec0eb4f-6444-4f95-aba0-50c24d67f998", "skuPartNumber": "AAD_PREMIUM_P2",
                                       "capabilityStatus": "Enabled", "consumedUnits": 8, "prepaidUnits": {"enabled": 10},
                                       "servicePlans": [{"servicePlanName": "AAD_PREMIUM_P2"}, {"servicePlanName": "AAD_PREMIUM"}]}]},
        "role_definitions": {"value": [{"id": rid, "templateId": rid, "displayName": name, "isBuiltIn": True,
                                        "isEnabled": True, "rolePermissions": []} for rid, name in ROLES.items()]},
        "users": {"value": [user(uid, now) for uid in USERS]},
        "role_assignable_groups": {"value": [{"id": OPS_GROUP, "displayName": "Exchange Ops", "isAssignableToRole": True,
                                              "securityEnabled": True, "mailEnabled": False, "groupTypes": []}]},
        "group_members": {"pages": [{"parent": OPS_GROUP, "body": {"value": []}}]},
        "group_assignment_instances": {"pages": [{"parent": OPS_GROUP, "body": {"value": []}}]},
        "group_eligibility_instances": {"pages": [{"parent": OPS_GROUP, "body": {"value": [
            {"id": "ge-dan", "groupId": OPS_GROUP, "principalId": DAN, "accessId": "member", "memberType": "Direct",
             "startDateTime": at(now, days=-30), "endDateTime": at(now, days=150)}]}}]},
        "group_policy_assignments": {"pages": [{"parent": OPS_GROUP, "body": {"value": [
            policy("member", 4, mfa=True, justification=True, approvers=[], scope=OPS_GROUP, scope_type="Group")]}}]},
        "role_assignment_instances": {"value": [
            instance("ra-bg1", BG1, GA, now, start_days=-300), instance("ra-bg2", BG2, GA, now, start_days=-300),
            instance("ra-ops", OPS_GROUP, EXCHANGE_ADMIN, now, start_days=-300, kind="group")]},
        "role_eligibility_instances": {"value": [
            instance("re-alice", ALICE, SECURITY_ADMIN, now, end_days=150),
            instance("re-bob", BOB, EXCHANGE_ADMIN, now, end_days=150),
            instance("re-carol", CAROL, GLOBAL_READER, now, end_days=150)]},
        "role_assignments": {"value": [{"id": "ra-bg1", "principalId": BG1, "roleDefinitionId": GA, "directoryScopeId": "/"},
                                       {"id": "ra-bg2", "principalId": BG2, "roleDefinitionId": GA, "directoryScopeId": "/"}]},
        "role_policy_assignments": {"value": [
            policy(GA, 1, mfa=True, justification=True, approvers=[ERIN], context="c1"),
            policy(SECURITY_ADMIN, 1, mfa=True, justification=True, approvers=[ERIN], context="c1"),
            policy(EXCHANGE_ADMIN, 4, mfa=True, justification=True, approvers=[]),
            policy(GLOBAL_READER, 8, mfa=False, justification=False, approvers=[])]},
        "access_review_definitions": {"value": [{
            "id": "rev-1", "displayName": "Monthly privileged role review", "status": "InProgress",
            "scope": {"@odata.type": "#microsoft.graph.principalResourceMembershipsScope",
                      "principalScopes": [{"@odata.type": "#microsoft.graph.accessReviewQueryScope", "query": "/users"}],
                      "resourceScopes": [{"@odata.type": "#microsoft.graph.accessReviewQueryScope",
                                          "query": f"/roleManagement/directory/roleDefinitions/{rid}"}
                                         for rid in (GA, SECURITY_ADMIN, EXCHANGE_ADMIN)]},
            "reviewers": [{"query": "./manager", "queryType": "MicrosoftGraph"}],
            "settings": {"defaultDecision": "Deny", "defaultDecisionEnabled": True, "autoApplyDecisionsEnabled": True,
                         "instanceDurationInDays": 14, "recommendationsEnabled": True,
                         "recurrence": {"pattern": {"type": "absoluteMonthly", "interval": 1}}}}]},
        "access_review_instances": {"pages": [{"parent": "rev-1", "body": {"value": [
            {"id": "inst-1", "status": "Completed", "startDateTime": iso(review_end - timedelta(days=14)),
             "endDateTime": iso(review_end)}]}}]},
        "access_review_decisions": {"pages": [{"parent": "rev-1/inst-1", "body": {"value": [
            {"id": "dec-alice", "accessReviewId": "inst-1", "decision": "Approve", "applyResult": "AppliedSuccessfully",
             "reviewedBy": {"id": ERIN, "displayName": "Erin", "userPrincipalName": upn(ERIN)},
             "reviewedDateTime": iso(review_end - timedelta(days=3)), "justification": "still on call",
             "principal": {"@odata.type": "#microsoft.graph.userIdentity", "id": ALICE, "displayName": "Alice",
                           "userPrincipalName": upn(ALICE)},
             "resource": {"id": SECURITY_ADMIN, "displayName": "Security Administrator", "type": "directoryRole"}},
            {"id": "dec-frank", "accessReviewId": "inst-1", "decision": "Deny", "applyResult": "AppliedSuccessfully",
             "appliedDateTime": iso(review_end),
             "reviewedBy": {"id": ERIN, "displayName": "Erin", "userPrincipalName": upn(ERIN)},
             "reviewedDateTime": iso(review_end - timedelta(days=3)), "justification": "left the team",
             "principal": {"@odata.type": "#microsoft.graph.userIdentity", "id": FRANK, "displayName": "Frank",
                           "userPrincipalName": upn(FRANK)},
             "resource": {"id": EXCHANGE_ADMIN, "displayName": "Exchange Administrator", "type": "directoryRole"}}]}}]},
        "directory_audits": {"value": activation(1, ALICE, SECURITY_ADMIN, weekday_10am(now, 3), ERIN)
                             + activation(2, BOB, EXCHANGE_ADMIN, weekday_10am(now, 5), None)},
        "registration_details": {"value": [
            {"id": uid, "userPrincipalName": upn(uid), "isMfaRegistered": True, "isMfaCapable": True,
             "isPasswordlessCapable": uid in (BG1, BG2, ALICE),
             "methodsRegistered": ["fido2", "microsoftAuthenticatorPush"] if uid in (BG1, BG2, ALICE)
             else ["microsoftAuthenticatorPush"]} for uid in USERS]},
        "fido2_methods": {"pages": [{"parent": uid, "body": {"value": [
            {"id": f"key-{USERS[uid]}", "displayName": "YubiKey 5", "model": "YubiKey 5 NFC",
             "aaGuid": "cb69481e-8ff7-4039-93ec-0a2729a154a8", "createdDateTime": at(now, days=-200)}]}}
            for uid in (BG1, BG2, ALICE)] + [{"parent": uid, "body": {"value": []}} for uid in (BOB, CAROL, DAN)]},
        "sign_in_activity": sign_in_activity(SIGNED_IN, now),
        "ca_policies": {"value": [
            {"id": "ca-admins", "displayName": "Admins: phishing-resistant MFA", "state": "enabled",
             "conditions": {"users": {"includeRoles": [GA, SECURITY_ADMIN], "excludeUsers": [BG1, BG2]},
                            "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
             "grantControls": {"operator": "OR", "builtInControls": [],
                               "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004",
                                                          "displayName": "Phishing-resistant MFA"}}},
            {"id": "ca-c1", "displayName": "PIM activation context c1", "state": "enabled",
             "conditions": {"users": {"includeUsers": ["All"], "excludeUsers": [BG1, BG2]},
                            "applications": {"includeAuthenticationContextClassReferences": ["c1"]},
                            "clientAppTypes": ["all"]},
             "grantControls": {"operator": "OR", "builtInControls": [],
                               "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004",
                                                          "displayName": "Phishing-resistant MFA"}}}]},
        "authentication_contexts": {"value": [{"id": "c1", "displayName": "PIM activation", "isAvailable": True}]},
        "authentication_strengths": {"value": [
            {"id": "00000000-0000-0000-0000-000000000004", "displayName": "Phishing-resistant MFA", "policyType": "builtIn",
             "allowedCombinations": ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"]}]},
    }
