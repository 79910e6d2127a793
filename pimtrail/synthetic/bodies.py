"""Graph-shaped objects of the synthetic tenant's state datasets, produced one at a time.

The shapes follow the sample tenant (sample_data/builder), which is checked against msgraph-sdk's
models; every function here is a generator or returns a short list.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from .presets import GLOBAL_ADMIN, iso_min, role_assignment_id
from .tenant import ENABLED, GUEST, METHOD_SETS, SYNCED, Tenant

KEY_METHODS = {"fido2", "passKeyDeviceBound"}
PASSWORDLESS = KEY_METHODS | {"windowsHelloForBusiness"}
SSPR = {"microsoftAuthenticatorPush", "mobilePhone", "softwareOneTimePasscode", "email"}
_TYPES = {"user": "#microsoft.graph.user", "group": "#microsoft.graph.group",
          "servicePrincipal": "#microsoft.graph.servicePrincipal"}


def organization(t: Tenant) -> list[dict[str, Any]]:
    return [{
        "id": t.tenant_id, "deletedDateTime": None, "businessPhones": ["+1 555 0100"], "city": "Springfield",
        "country": "United States", "countryLetterCode": "US", "createdDateTime": "2016-03-01T09:00:00Z",
        "displayName": f"Contoso Synthetic {t.seed}", "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": iso_min(t.now() - 17), "onPremisesSyncEnabled": True,
        "postalCode": "12345", "preferredLanguage": "en", "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [], "state": None, "street": "1 Synthetic Way",
        "technicalNotificationMails": [f"it@{t.domain}"], "tenantType": "AAD",
        "assignedPlans": [{"assignedDateTime": "2020-01-01T00:00:00Z", "capabilityStatus": "Enabled",
                           "service": "AADPremiumService", "servicePlanId": "eec0eb4f-6444-4f95-aba0-50c24d67f998"}],
        "privacyProfile": None, "provisionedPlans": [],
        "verifiedDomains": [
            {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": True, "isInitial": False,
             "name": t.domain, "type": "Managed"},
            {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": False, "isInitial": True,
             "name": t.initial_domain, "type": "Managed"}],
    }]


def subscribed_skus(t: Tenant) -> list[dict[str, Any]]:
    consumed = sum(1 for f in t.user_flags if f & ENABLED and not f & GUEST)
    return [{
        "accountName": f"Contoso Synthetic {t.seed}", "accountId": t.tenant_id, "appliesTo": "User",
        "capabilityStatus": "Enabled", "consumedUnits": consumed,
        "id": f"{t.tenant_id}_84a661c4-e949-4bd2-a560-ed7766fcaf2b", "skuId": "84a661c4-e949-4bd2-a560-ed7766fcaf2b",
        "skuPartNumber": "AAD_PREMIUM_P2", "subscriptionIds": [t.ids.guid("subscription")],
        "prepaidUnits": {"enabled": t.p.users + 1000, "suspended": 0, "warning": 0, "lockedOut": 0},
        "servicePlans": [
            {"servicePlanId": "eec0eb4f-6444-4f95-aba0-50c24d67f998", "servicePlanName": "AAD_PREMIUM_P2",
             "provisioningStatus": "Success", "appliesTo": "User"},
            {"servicePlanId": "41781fb2-bc02-4b7c-bd55-b576c07bb09d", "servicePlanName": "AAD_PREMIUM",
             "provisioningStatus": "Success", "appliesTo": "User"}],
    }]


def users(t: Tenant) -> Iterator[dict[str, Any]]:
    """The users list, as collected: without `signInActivity` (the `sign_in_activity` dataset)."""
    for i in range(t.p.users):
        name, upn = t.user_name(i)
        flags = t.user_flags[i]
        yield {"id": t.user_id(i), "userPrincipalName": upn, "displayName": name,
               "userType": "Guest" if flags & GUEST else "Member", "accountEnabled": bool(flags & ENABLED),
               "onPremisesSyncEnabled": True if flags & SYNCED else None,
               "createdDateTime": iso_min(t.user_created[i])}


def sign_in_activity(t: Tenant, slots: Iterable[int]) -> Iterator[dict[str, Any]]:
    """`$select=id,signInActivity` of the users in `slots` (in order): null for one who never signed in."""
    now = t.now()
    for i in slots:
        flags, signin = t.user_flags[i], t.user_signin[i]
        activity = None
        if signin >= 0:
            moved = t.user_quiet[i]  # a daily sign-in moved the non-interactive one (Tenant._daily_sign_ins)
            quiet = moved if moved >= 0 else max(signin, min(signin + 540, now - 41)) if flags & ENABLED else signin
            gen = t.user_gen[i]
            request = t.ids.guid("signin", i, gen, signin)
            quiet_request = t.ids.guid("signin-ni", i, gen, quiet)
            # the last successful sign-in, interactive or not (without daily sign-ins: the interactive one)
            success, success_request = (quiet, quiet_request) if moved > signin else (signin, request)
            activity = {"lastSignInDateTime": iso_min(signin), "lastSignInRequestId": request,
                        "lastNonInteractiveSignInDateTime": iso_min(quiet),
                        "lastNonInteractiveSignInRequestId": quiet_request,
                        "lastSuccessfulSignInDateTime": iso_min(success), "lastSuccessfulSignInRequestId": success_request}
        yield {"id": t.user_id(i), "signInActivity": activity}


def registration_details(t: Tenant) -> Iterator[dict[str, Any]]:
    updated = iso_min(t.now() - 240)  # the report is refreshed a few hours before collection
    admins = set(t.privileged_user_slots())
    for i in range(t.p.users):
        name, upn = t.user_name(i)
        methods = list(METHOD_SETS[t.user_methods[i]])
        guest = bool(t.user_flags[i] & GUEST)
        sspr = bool(SSPR & set(methods))
        preferred = ["Fido2"] if KEY_METHODS & set(methods) else ["Push"] if "microsoftAuthenticatorPush" in methods \
            else ["Sms"] if "mobilePhone" in methods else ["Oath"] if methods else []
        yield {"id": t.user_id(i), "userPrincipalName": upn, "userDisplayName": name,
               "userType": "guest" if guest else "member", "isAdmin": i in admins,
               "isSsprRegistered": sspr, "isSsprEnabled": not guest, "isSsprCapable": sspr and not guest,
               "isMfaRegistered": bool(methods), "isMfaCapable": bool(methods),
               "isPasswordlessCapable": bool(PASSWORDLESS & set(methods)), "methodsRegistered": methods,
               "isSystemPreferredAuthenticationMethodEnabled": True, "systemPreferredAuthenticationMethods": preferred,
               "userPreferredMethodForSecondaryAuthentication": "push" if "microsoftAuthenticatorPush" in methods
               else "sms" if "mobilePhone" in methods else "none",
               "lastUpdatedDateTime": updated}


def fido2_methods(t: Tenant, i: int) -> list[dict[str, Any]]:
    if "fido2" not in METHOD_SETS[t.user_methods[i]]:
        return []
    created = t.user_created[i] + 1440 * (1 + t.ids.number("fido2", i) % 30)
    aaguid = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
    return [{"id": t.ids.token("fido2", i, t.user_gen[i]), "displayName": "YubiKey 5 NFC",
             "createdDateTime": iso_min(min(created, t.now() - 60)), "aaGuid": aaguid, "model": "YubiKey 5 NFC",
             "attestationCertificates": [t.ids.token("attestation", aaguid, length=40)],
             "attestationLevel": "attested", "passkeyType": "deviceBound"}]


# ---------------------------------------------------------------------- groups
def role_assignable_groups(t: Tenant) -> Iterator[dict[str, Any]]:
    for g in range(t.p.groups):
        yield {"id": t.group_id(g), "displayName": t.group_name(g), "description": f"Privileged access group {g}",
               "isAssignableToRole": True, "securityEnabled": True, "mailEnabled": False, "groupTypes": []}


def group_members(t: Tenant) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {g: [] for g in range(t.p.groups)}
    for g, u in sorted(zip(t.mem_g, t.mem_u)):
        name, upn = t.user_name(u)
        out[g].append({"@odata.type": "#microsoft.graph.user", "id": t.user_id(u), "displayName": name,
                       "userPrincipalName": upn, "userType": "Member"})
    return out


def group_assignment_instances(t: Tenant, g: int) -> list[dict[str, Any]]:
    out = []
    for group, u in t.pim_owner:
        if group == g:
            schedule = t.ids.guid("group-assignment-schedule", g, u)
            out.append({"id": t.ids.guid("group-assignment-instance", schedule), "accessId": "owner",
                        "principalId": t.user_id(u), "groupId": t.group_id(g), "memberType": "direct",
                        "assignmentType": "assigned", "startDateTime": "2025-01-06T09:00:00Z", "endDateTime": None,
                        "assignmentScheduleId": schedule})
    return out


def group_eligibility_instances(t: Tenant, g: int) -> list[dict[str, Any]]:
    out = []
    for group, u, access in t.pim_elig:
        if group == g:
            schedule = t.ids.guid("group-eligibility-schedule", g, u, access)
            out.append({"id": t.ids.guid("group-eligibility-instance", schedule), "accessId": access,
                        "principalId": t.user_id(u), "groupId": t.group_id(g), "memberType": "direct",
                        "startDateTime": "2025-02-03T09:00:00Z", "endDateTime": "2027-02-03T09:00:00Z",
                        "eligibilityScheduleId": schedule})
    return out


# ---------------------------------------------------------------------- roles
def role_definitions(t: Tenant) -> list[dict[str, Any]]:
    return [{"id": r.id, "description": f"Built-in role {r.name}.", "displayName": r.name, "isBuiltIn": True,
             "isEnabled": True, "resourceScopes": ["/"], "templateId": r.id, "version": "1",
             "rolePermissions": [{"allowedResourceActions": [f"microsoft.directory/{r.name.split()[0].lower()}/allTasks"],
                                  "condition": None, "excludedResourceActions": []}]}
            for r in sorted(t.roles, key=lambda r: r.name)]


def privileged_role_definitions(t: Tenant) -> list[dict[str, Any]]:
    return [{"id": r.id, "displayName": r.name, "isPrivileged": True}
            for r in sorted(t.roles, key=lambda r: r.name) if r.tier == 0]


def _principal_ref(t: Tenant, p: int) -> dict[str, Any]:
    kind, pid, name, extra = t.principal(p)
    ref: dict[str, Any] = {"@odata.type": _TYPES[kind], "id": pid, "displayName": name}
    if kind == "user":
        ref["userPrincipalName"] = extra
    elif kind == "servicePrincipal":
        ref["appId"] = extra
    return ref


def eligibility_instances(t: Tenant) -> Iterator[dict[str, Any]]:
    for slot in sorted(range(len(t.elig_p)), key=lambda s: (t.elig_r[s], t.elig_p[s])):
        p, role = t.elig_p[slot], t.roles[t.elig_r[slot]]
        ref = _principal_ref(t, p)
        start = t.elig_start[slot]
        end = None if t.ids.chance("elig-end", slot, start) < 0.3 else start + 365 * 1440
        yield {"id": role_assignment_id(role.id, ref["id"]) + "-e", "principalId": ref["id"],
               "roleDefinitionId": role.id, "directoryScopeId": "/", "appScopeId": None,
               "startDateTime": iso_min(start), "endDateTime": iso_min(end),
               "memberType": "Group" if ref["@odata.type"].endswith("group") else "Direct",
               "roleEligibilityScheduleId": t.ids.guid("elig-schedule", slot, start), "principal": ref}


def assignment_instances(t: Tenant, activated: list[tuple[int, int, int, int, str]]) -> list[dict[str, Any]]:
    """Active instances: the assigned ones plus `activated` (principal, role, start, end, seed)."""
    out, taken = [], set()
    for slot in range(len(t.act_p)):
        p, role, kind, start = t.act_p[slot], t.roles[t.act_r[slot]], t.act_kind[slot], t.act_start[slot]
        ref = _principal_ref(t, p)
        assignment_id = role_assignment_id(role.id, ref["id"])
        taken.add(assignment_id)
        out.append({"id": assignment_id, "principalId": ref["id"], "roleDefinitionId": role.id,
                    "directoryScopeId": "/", "appScopeId": None,
                    "startDateTime": None if kind == 2 else iso_min(start),
                    "endDateTime": iso_min(start + 180 * 1440) if kind == 1 else None,
                    "assignmentType": "Assigned",
                    "memberType": "Group" if ref["@odata.type"].endswith("group") else "Direct",
                    "roleAssignmentOriginId": assignment_id,
                    "roleAssignmentScheduleId": assignment_id if kind == 2 else t.ids.guid("act-schedule", slot, start),
                    "principal": ref})
    for p, r, start, end, seed in activated:
        role, ref = t.roles[r], _principal_ref(t, p)
        assignment_id = role_assignment_id(role.id, ref["id"])
        if assignment_id in taken:
            continue
        taken.add(assignment_id)
        out.append({"id": assignment_id, "principalId": ref["id"], "roleDefinitionId": role.id,
                    "directoryScopeId": "/", "appScopeId": None, "startDateTime": iso_min(start),
                    "endDateTime": iso_min(end), "assignmentType": "Activated", "memberType": "Direct",
                    "roleAssignmentOriginId": t.ids.guid("elig-origin", p, r),
                    "roleAssignmentScheduleId": t.ids.guid("activation-schedule", seed), "principal": ref})
    return sorted(out, key=lambda i: (i["roleDefinitionId"], i["principalId"]))


def role_assignments(t: Tenant, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({"id": i["id"], "principalId": i["principalId"], "principalOrganizationId": t.tenant_id,
                    "directoryScopeId": "/", "roleDefinitionId": i["roleDefinitionId"]} for i in instances),
                  key=lambda x: x["id"])


def role_management_alerts(t: Tenant, outside_pim: int, global_admins: int) -> list[dict[str, Any]]:
    scanned = iso_min(t.now() - 35)
    counts = {"NoMfaOnRoleActivationAlert": 1, "RolesAssignedOutsidePimAlert": outside_pim,
              "StaleSignInAlert": max(1, t.p.privileged // 50),
              "TooManyGlobalAdminsAssignedToTenantAlert": global_admins if global_admins > 5 else 0}
    return [{"@odata.type": "#microsoft.graph.unifiedRoleManagementAlert",
             "id": f"DirectoryRole_{t.tenant_id}_{name}", "alertDefinitionId": f"DirectoryRole_{t.tenant_id}_{name}",
             "scopeId": "/", "scopeType": "DirectoryRole", "incidentCount": count, "isActive": count > 0,
             "lastModifiedDateTime": iso_min(t.now() - 3 * 1440), "lastScannedDateTime": scanned}
            for name, count in counts.items()]


def global_admin_holders(t: Tenant) -> int:
    ga = next(r.index for r in t.roles if r.id == GLOBAL_ADMIN)
    return len({p for p, r in zip(t.elig_p, t.elig_r) if r == ga} | {p for p, r in zip(t.act_p, t.act_r) if r == ga})
