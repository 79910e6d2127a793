"""Directory objects: organization, licences, users, groups and PIM for Groups state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .ids import iso
from .scenario import Principal
from .timeline import Timeline

ZERO_GUID = "00000000-0000-0000-0000-000000000000"


def principal_ref(p: Principal) -> dict[str, Any]:
    """A directory object as Graph expands it (`$expand=principal`)."""
    if p.kind == "user":
        return {"@odata.type": "#microsoft.graph.user", "id": p.id, "displayName": p.name,
                "userPrincipalName": p.upn}
    if p.kind == "group":
        return {"@odata.type": "#microsoft.graph.group", "id": p.id, "displayName": p.name}
    return {"@odata.type": "#microsoft.graph.servicePrincipal", "id": p.id, "displayName": p.name,
            "appId": p.app_id}


def exists(p: Principal, t: datetime) -> bool:
    return p.created <= t


class Directory:
    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.s = tl.s

    def organization(self, t: datetime) -> list[dict[str, Any]]:
        tn = self.s.tenant
        sku = self.s.raw["sku"]
        plans = [{"assignedDateTime": iso(s["licensed_since"]), "capabilityStatus": "Enabled",
                  "service": plan["service"], "servicePlanId": plan["id"]}
                 for s in sku for plan in s["plans"]]
        return [{
            "id": tn["id"],
            "deletedDateTime": None,
            "businessPhones": [tn["business_phone"]],
            "city": tn["city"],
            "country": tn["country"],
            "countryLetterCode": tn["country_letter_code"],
            "createdDateTime": iso(tn["created"]),
            "defaultUsageLocation": None,
            "displayName": tn["display_name"],
            "marketingNotificationEmails": [],
            "onPremisesLastSyncDateTime": iso(t - timedelta(minutes=tn["sync_lag_minutes"])),
            "onPremisesSyncEnabled": True,
            "postalCode": tn["postal_code"],
            "preferredLanguage": "en",
            "securityComplianceNotificationMails": [],
            "securityComplianceNotificationPhones": [],
            "state": None,
            "street": tn["street"],
            "technicalNotificationMails": [tn["technical_contact"]],
            "tenantType": "AAD",
            "assignedPlans": plans,
            "privacyProfile": None,
            "provisionedPlans": [],
            "verifiedDomains": [
                {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": True, "isInitial": False,
                 "name": tn["default_domain"], "type": "Managed"},
                {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": False, "isInitial": True,
                 "name": tn["initial_domain"], "type": "Managed"},
            ],
        }]

    def subscribed_skus(self, t: datetime) -> list[dict[str, Any]]:
        domain = "@" + self.s.tenant["default_domain"]
        licensed = [p for p in self.s.people() if exists(p, t) and not p.guest and p.upn.endswith(domain)
                    and not (p.disabled and p.disabled <= t)]
        return [{
            "accountName": self.s.tenant["display_name"],
            "accountId": self.s.tenant["id"],
            "appliesTo": "User",
            "capabilityStatus": "Enabled",
            "consumedUnits": len(licensed),
            "id": f"{self.s.tenant['id']}_{sku['sku_id']}",
            "skuId": sku["sku_id"],
            "skuPartNumber": sku["part_number"],
            "subscriptionIds": [sku["subscription"]],
            "prepaidUnits": {"enabled": sku["units"], "suspended": 0, "warning": 0, "lockedOut": 0},
            "servicePlans": [{"servicePlanId": plan["id"], "servicePlanName": plan["name"],
                              "provisioningStatus": "Success", "appliesTo": "User"} for plan in sku["plans"]],
        } for sku in self.s.raw["sku"]]

    def users(self, t: datetime) -> list[dict[str, Any]]:
        out = []
        for p in sorted(self.s.people(), key=lambda x: x.id):
            if not exists(p, t):
                continue
            out.append({
                "id": p.id,
                "userPrincipalName": p.upn,
                "displayName": p.name,
                "userType": "Guest" if p.guest else "Member",
                "accountEnabled": not (p.disabled is not None and p.disabled <= t),
                "onPremisesSyncEnabled": True if p.synced else None,
                "createdDateTime": iso(p.created),
            })
        return out

    def sign_in_activity(self, p: Principal, t: datetime) -> dict[str, Any] | None:
        last = self.tl.last_signin(p, t)
        if last is None:
            return None
        quiet = last
        if p.signin != "none":  # devices keep refreshing tokens for a working day
            quiet = max(last, min(last + timedelta(hours=9), t - timedelta(minutes=41)))
            if p.disabled is not None:
                quiet = max(last, min(quiet, p.disabled))
        request = self.s.ids.guid("signin", p.key, iso(last))
        return {
            "lastSignInDateTime": iso(last),
            "lastSignInRequestId": request,
            "lastNonInteractiveSignInDateTime": iso(quiet),
            "lastNonInteractiveSignInRequestId": self.s.ids.guid("signin-ni", p.key, iso(quiet)),
            "lastSuccessfulSignInDateTime": iso(last),
            "lastSuccessfulSignInRequestId": request,
        }

    # ------------------------------------------------------------------ groups
    def groups_at(self, t: datetime) -> list[Principal]:
        return sorted([g for g in self.s.groups() if exists(g, t)], key=lambda g: g.name)

    def group_cfg(self, g: Principal) -> dict[str, Any]:
        return next(item for item in self.s.raw["group"] if item["key"] == g.key)

    def role_assignable_groups(self, t: datetime) -> list[dict[str, Any]]:
        return [{"id": g.id, "displayName": g.name, "description": self.group_cfg(g).get("description"),
                 "isAssignableToRole": True, "securityEnabled": True, "mailEnabled": False, "groupTypes": []}
                for g in self.groups_at(t)]

    def group_members(self, g: Principal, t: datetime) -> list[dict[str, Any]]:
        return [{"@odata.type": "#microsoft.graph.user", "id": m.id, "displayName": m.name,
                 "userPrincipalName": m.upn, "userType": "Guest" if m.guest else "Member"}
                for m in self.tl.group_members_at(g, t)]

    def pim_onboarded(self, g: Principal, t: datetime) -> bool:
        since = self.group_cfg(g).get("pim_onboarded")
        return since is not None and since <= t

    def pim_groups(self, t: datetime) -> list[dict[str, Any]]:
        return [{"id": g.id} for g in self.groups_at(t) if self.pim_onboarded(g, t)]

    def group_assignment_instances(self, g: Principal, t: datetime) -> list[dict[str, Any]]:
        if not self.pim_onboarded(g, t):
            return []
        out = []
        for access in ("owner", "member"):
            for link in self.tl.links_at(g, t, access, False):
                schedule = self.s.ids.guid("group-assignment-schedule", g.key, access, link.who.key, iso(link.start))
                out.append(self._group_instance(g, link.who, access, "assigned", link.start, link.expires, schedule))
        for a in self.tl.activations_at(t):
            if a.group is g:
                schedule = self.s.ids.guid("group-activation-schedule", a.seed)
                out.append(self._group_instance(g, a.who, "member", "activated", a.start, a.end, schedule))
        return out

    def _group_instance(self, g: Principal, who: Principal, access: str, kind: str, start: datetime,
                        end: datetime | None, schedule: str) -> dict[str, Any]:
        return {"id": self.s.ids.guid("group-assignment-instance", schedule), "accessId": access,
                "principalId": who.id, "groupId": g.id, "memberType": "direct", "assignmentType": kind,
                "startDateTime": iso(start), "endDateTime": iso(end), "assignmentScheduleId": schedule}

    def group_eligibility_instances(self, g: Principal, t: datetime) -> list[dict[str, Any]]:
        if not self.pim_onboarded(g, t):
            return []
        out = []
        for link in self.tl.links_at(g, t, "member", True) + self.tl.links_at(g, t, "owner", True):
            schedule = self.s.ids.guid("group-eligibility-schedule", g.key, link.access, link.who.key)
            out.append({"id": self.s.ids.guid("group-eligibility-instance", schedule), "accessId": link.access,
                        "principalId": link.who.id, "groupId": g.id, "memberType": "direct",
                        "startDateTime": iso(link.start), "endDateTime": iso(link.expires),
                        "eligibilityScheduleId": schedule})
        return out

    def group_policy_assignments(self, g: Principal, t: datetime) -> list[dict[str, Any]]:
        if not self.pim_onboarded(g, t):
            return []
        scopes = [sc for sc in self.tl.policies.group_scopes if sc.startswith(f"group:{g.key}/")]
        return [self.tl.policies.assignment(sc, t) for sc in scopes]
