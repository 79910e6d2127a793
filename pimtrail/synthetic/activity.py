"""The directory audit log and the access reviews of the synthetic tenant.

Each day holds exactly `audit_per_day` events: the day's churn (assignments and group memberships
added and removed, see `Tenant.step`) and PIM activations to fill the rest (requested, approved or
denied for tier-0 roles, completed, expired; joined by correlationId). A day's events depend only on
the seed, the day and that day's churn, so every export that covers the day carries the same events.
Activations use the assignments that never churn, so an activation's eligibility always exists.
"""

from __future__ import annotations

import json
import random
from array import array
from typing import Any, Iterator

from .policies import LAX_TIER0, approver_slots
from .presets import GRAPH, Role, iso_min
from .tenant import CORE_SHARE, Change, Tenant
from .writer import dumps

MS_PIM_APP = "01fc33a7-78ba-4d2f-a4b7-768e336e890e"
JUSTIFICATIONS = ("Change CHG0041773: rotate service credentials", "Incident INC-20931 triage",
                  "Monthly access review follow-up", "Quarterly license reconciliation",
                  "Mailbox migration batch 7", "n/a", "Investigate sign-in alerts for finance", "test")
Activation = tuple[int, int, int, int, str]  # principal, role, start, end, seed


class Activity:
    def __init__(self, t: Tenant) -> None:
        if t.day:
            raise ValueError("create Activity before the first step: it reads the initial assignments")
        self.t = t
        core = int(len(t.elig_p) * CORE_SHARE)
        self.activators = [s for s in range(core) if t.elig_p[s] < t.p.privileged_users]
        self.base_p, self.base_r = array("i", t.elig_p), array("i", t.elig_r)
        self._days: dict[int, tuple[list[tuple[int, str]], list[Activation]]] = {}
        self.approvers = approver_slots(t)

    # ------------------------------------------------------------------ audit
    def window(self, since: int | None = None) -> Iterator[dict[str, Any] | str]:
        """The audit events of the export at the tenant's current day, newest first, as JSON text:
        the preset's whole audit window, or from minute `since` on when that is later (a daily
        collection that asks only for what arrived since the previous one)."""
        t = self.t
        end, days = t.now(), t.p.audit_days
        start = max(end - days * 1440, since if since is not None else end - days * 1440)
        first = t.day - days - 1
        for old in [d for d in self._days if d < first]:
            del self._days[old]
        chosen = [(ts, text) for d in range(first, t.day) for ts, text in self._day(d)[0] if start <= ts < end]
        chosen.sort(reverse=True)
        return (text for _, text in chosen)

    def activated_now(self) -> list[Activation]:
        """Activations in effect at collection time (they started the day before)."""
        now = self.t.now()
        return [a for a in self._day(self.t.day - 1)[1] if a[2] <= now < a[3]]

    def _day(self, d: int) -> tuple[list[tuple[int, str]], list[Activation]]:
        if d not in self._days:
            self._days[d] = self._build_day(d)
        return self._days[d]

    def _build_day(self, d: int) -> tuple[list[tuple[int, str]], list[Activation]]:
        t = self.t
        events: list[tuple[int, dict[str, Any]]] = []
        for change in t.changes.get(d, []):
            events += self._churn(change)
        budget = t.p.audit_per_day - len(events)
        rng = random.Random(f"{t.seed}/audit/{d}")
        day_start = t.now() + (d - t.day) * 1440
        activations: list[Activation] = []
        k = 0
        while budget > 0 and self.activators:
            group = self._activation(rng, d, k, day_start, activations)
            events += group[:budget]
            budget -= len(group)
            k += 1
        return [(ts, dumps(e)) for ts, e in events], activations

    # ------------------------------------------------------------------ shapes
    def _user(self, u: int) -> dict[str, Any]:
        name, upn = self.t.user_name(u)
        return {"user": {"id": self.t.user_id(u), "displayName": name, "userPrincipalName": upn,
                         "ipAddress": f"203.0.113.{u % 250 + 1}"}, "app": None}

    def _app(self) -> dict[str, Any]:
        return {"app": {"appId": MS_PIM_APP, "displayName": "MS-PIM", "servicePrincipalId": self.t.ids.guid("sp", "ms-pim"),
                        "servicePrincipalName": None}, "user": None}

    @staticmethod
    def _target(kind: str, id_: str, name: str | None, upn: str | None = None,
                modified: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"id": id_, "displayName": name, "type": kind, "userPrincipalName": upn, "groupType": None,
                "modifiedProperties": modified or []}

    def _principal_target(self, p: int) -> dict[str, Any]:
        kind, pid, name, extra = self.t.principal(p)
        kind = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}[kind]
        return self._target(kind, pid, name, extra if kind == "User" else None)

    def _event(self, seed: str | random.Random, at: int, activity: str, category: str, initiator: dict[str, Any],
               targets: list[dict[str, Any]], correlation: str, reason: str = "", op: str = "Add",
               details: list[dict[str, str]] | None = None, service: str = "PIM") -> tuple[int, dict[str, Any]]:
        ident = self.t.ids.drawn(seed) if isinstance(seed, random.Random) else self.t.ids.guid("audit", seed, activity)
        return at, {"id": ident, "category": category, "correlationId": correlation,
                    "result": "success", "resultReason": reason, "activityDisplayName": activity,
                    "activityDateTime": iso_min(at), "loggedByService": service, "operationType": op,
                    "initiatedBy": initiator, "targetResources": targets, "additionalDetails": details or []}

    @staticmethod
    def _details(role: Role | None, **times: int) -> list[dict[str, str]]:
        out = [] if role is None else [{"key": "RoleDefinitionOriginId", "value": role.id},
                                       {"key": "RoleDefinitionOriginType", "value": "BuiltInRole"},
                                       {"key": "TemplateId", "value": role.id}]
        return out + [{"key": k, "value": iso_min(v)} for k, v in times.items()]

    # ------------------------------------------------------------------ activations
    def _activation(self, rng: random.Random, d: int, k: int, day_start: int,
                    activations: list[Activation]) -> list[tuple[int, dict[str, Any]]]:
        t, ids = self.t, self.t.ids
        seed = f"act/{d}/{k}"
        slot = self.activators[rng.randrange(len(self.activators))]
        p, role = self.base_p[slot], t.roles[self.base_r[slot]]
        hour = rng.choices(range(24), [1] * 7 + [6] * 11 + [1] * 6)[0]  # mostly business hours (UTC)
        requested = day_start - day_start % 1440 + hour * 60 + rng.randrange(60)
        requested += 1440 if requested < day_start else 0
        corr, request = ids.drawn(rng), ids.drawn(rng)
        targets = [self._target("Role", role.id, role.name), self._target("Request", request, None),
                   self._principal_target(p)]
        why = JUSTIFICATIONS[rng.randrange(len(JUSTIFICATIONS))]
        base = self._details(role)
        out = [self._event(rng, requested, "Add member to role requested (PIM activation)", "RoleManagement",
                           self._user(p), targets, corr, why, details=base)]
        start, granted = requested + 1, True
        if role.tier == 0 and role.name != LAX_TIER0:
            decided = requested + rng.randrange(3, 90)
            granted = rng.random() > 0.06
            approver = self.approvers[rng.randrange(len(self.approvers))] if self.approvers else p
            verdict = "approved" if granted else "denied"
            out.append(self._event(rng, decided, f"Add member to role request {verdict} (PIM activation)",
                                   "RoleManagement", self._user(approver), targets, corr, verdict.capitalize(),
                                   op="Update", details=base))
            start = decided + 1
        if not granted:
            return out
        hours = 1 if role.tier == 0 and role.name != LAX_TIER0 else rng.randint(1, (4, 4, 8)[role.tier] if
                                                                              role.name != LAX_TIER0 else 8)
        end = start + hours * 60
        window = self._details(role, StartTime=start, ExpirationTime=end)
        out.append(self._event(rng, start, "Add member to role completed (PIM activation)", "RoleManagement",
                               self._user(p), targets, corr, why, details=window))
        out.append(self._event(rng, end, "Remove member from role (PIM activation expired)", "RoleManagement",
                               self._app(), targets, corr, "Activation expired", op="Delete", details=window))
        activations.append((p, role.index, start, end, seed))
        return out

    # ------------------------------------------------------------------ churn
    def _churn(self, change: Change) -> list[tuple[int, dict[str, Any]]]:
        t, seed = self.t, f"churn/{change.kind}/{change.slot}/{change.at}"
        admin = self._user(8 % t.p.privileged_users)
        if change.kind == "member":
            return [self._membership(seed, change.at, change.old, False, admin),
                    self._membership(seed, change.at + 1, change.new, True, admin)]
        if change.kind not in ("eligible", "active"):
            return []
        out = []
        for (p, r), added in ((change.old, False), (change.new, True)):
            role = t.roles[r]
            noun = "eligible member" if change.kind == "eligible" else "member"
            activity = f"{'Add' if added else 'Remove'} {noun} {'to' if added else 'from'} role in PIM completed (permanent)"
            targets = [self._target("Role", role.id, role.name),
                       self._target("Request", t.ids.guid("request", seed, added), None), self._principal_target(p)]
            out.append(self._event(f"{seed}/{added}", change.at + added, activity, "RoleManagement", admin, targets,
                                   t.ids.guid("correlation", seed, added), "Access request ticket",
                                   op="Add" if added else "Delete", details=self._details(role)))
        return out

    def _membership(self, seed: str, at: int, pair: tuple, added: bool, admin: dict[str, Any]) -> tuple[int, dict]:
        t = self.t
        g, u = pair
        gid, gname = json.dumps(t.group_id(g)), json.dumps(t.group_name(g))
        modified = [{"displayName": "Group.ObjectID", "oldValue": None if added else gid, "newValue": gid if added else None},
                    {"displayName": "Group.DisplayName", "oldValue": None if added else gname,
                     "newValue": gname if added else None}]
        targets = [self._target("User", t.user_id(u), None, t.user_name(u)[1], modified),
                   self._target("Group", t.group_id(g), t.group_name(g))]
        activity = "Add member to group" if added else "Remove member from group"
        return self._event(f"{seed}/{added}", at, activity, "GroupManagement", admin, targets,
                           t.ids.guid("correlation", seed, activity), "", op="Assign" if added else "Unassign",
                           service="Core Directory")


class Reviews:
    """Two recurring access reviews: tier-0 roles monthly, four busy tier-1 roles quarterly."""

    def __init__(self, activity: Activity) -> None:
        t = self.t = activity.t
        self.base_p, self.base_r = activity.base_p, activity.base_r
        tier1 = ("Exchange Administrator", "SharePoint Administrator", "Intune Administrator", "Helpdesk Administrator")
        self.definitions = [("Tier 0 roles (monthly)", [r for r in t.roles if r.tier == 0], 1),
                            ("Busy tier 1 roles (quarterly)", [r for r in t.roles if r.name in tier1], 3)]
        self.created = t.now() - 150 * 1440
        self.holders: dict[int, list[int]] = {}
        for slot, r in enumerate(self.base_r):
            self.holders.setdefault(r, []).append(slot)

    def definition_id(self, n: int) -> str:
        return self.t.ids.guid("access-review-definition", n)

    def rounds(self, n: int) -> list[tuple[str, int]]:
        """(label, opening minute) of every round opened by now, oldest first."""
        from .presets import EPOCH, minutes

        every = self.definitions[n][2]
        now, out = self.t.now(), []
        year, month = (EPOCH.year, 1)
        while True:
            opens = minutes(EPOCH.replace(year=year, month=month, hour=8))
            if opens > now:
                return out
            if opens >= self.created:
                out.append((f"{year}-{month:02d}", opens))
            month += every
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1

    def definitions_body(self) -> list[dict[str, Any]]:
        out = []
        for n, (name, roles, every) in enumerate(self.definitions):
            reviewer = [{"query": f"/users/{self.t.user_id(u)}", "queryType": "MicrosoftGraph", "queryRoot": None}
                        for u in approver_slots(self.t)]
            out.append({
                "id": self.definition_id(n), "displayName": name, "createdDateTime": iso_min(self.created),
                "lastModifiedDateTime": iso_min(self.created), "status": "InProgress",
                "descriptionForAdmins": f"Recurring review: {name}", "descriptionForReviewers": "Keep only what is needed",
                "createdBy": {"id": self.t.user_id(5), "displayName": self.t.user_name(5)[0],
                              "userPrincipalName": self.t.user_name(5)[1]},
                "scope": {"@odata.type": "#microsoft.graph.principalResourceMembershipsScope",
                          "principalScopes": [_query("/users"), _query("/groups")],
                          "resourceScopes": [_query(f"/roleManagement/directory/roleDefinitions/{r.id}") for r in roles]},
                "reviewers": reviewer, "fallbackReviewers": [], "additionalNotificationRecipients": [],
                "settings": {"mailNotificationsEnabled": True, "reminderNotificationsEnabled": True,
                             "justificationRequiredOnApproval": True, "defaultDecisionEnabled": True,
                             "defaultDecision": "Deny", "instanceDurationInDays": 14, "autoApplyDecisionsEnabled": True,
                             "recommendationsEnabled": True, "recommendationLookBackDuration": "P30D",
                             "decisionHistoriesForReviewersEnabled": False,
                             "recurrence": {"pattern": {"type": "absoluteMonthly", "interval": every, "month": 0,
                                                        "dayOfMonth": 1, "daysOfWeek": [], "firstDayOfWeek": "sunday",
                                                        "index": "first"},
                                            "range": {"type": "noEnd", "numberOfOccurrences": 0,
                                                      "recurrenceTimeZone": None,
                                                      "startDate": iso_min(self.created)[:10], "endDate": None}},
                             "applyActions": [{"@odata.type": "#microsoft.graph.removeAccessApplyAction"}],
                             "recommendationInsightSettings": []},
                "stageSettings": []})
        return out

    def instance_id(self, n: int, label: str, role: Role) -> str:
        return self.t.ids.guid("access-review-instance", n, label, role.id)

    def instances(self, n: int) -> list[dict[str, Any]]:
        now, out = self.t.now(), []
        for label, opens in self.rounds(n):
            closes, applied = opens + 14 * 1440, opens + 15 * 1440
            status = "InProgress" if now < closes else "Completed" if now < applied else "Applied"
            for role in sorted(self.definitions[n][1], key=lambda r: r.name):
                out.append({"id": self.instance_id(n, label, role), "startDateTime": iso_min(opens),
                            "endDateTime": iso_min(closes), "status": status,
                            "scope": {"@odata.type": "#microsoft.graph.principalResourceMembershipsScope",
                                      "principalScopes": [_query("/v1.0/users"), _query("/v1.0/groups")],
                                      "resourceScopes": [_query(f"/beta/roleManagement/directory/roleDefinitions/{role.id}")]},
                            "reviewers": [], "fallbackReviewers": []})
        return out

    def decision_parents(self, n: int) -> Iterator[tuple[str, str, int, Role]]:
        for label, opens in self.rounds(n):
            for role in sorted(self.definitions[n][1], key=lambda r: r.name):
                yield label, self.instance_id(n, label, role), opens, role

    def decisions(self, n: int, label: str, instance_id: str, opens: int, role: Role) -> Iterator[dict[str, Any]]:
        t, now, ids = self.t, self.t.now(), self.t.ids
        applied = now >= opens + 15 * 1440
        reviewer = approver_slots(t)
        for slot in self.holders.get(role.index, []):
            kind, pid, name, upn = t.principal(self.base_p[slot])
            roll = ids.chance("decision", n, label, slot)
            at = opens + 60 + int(roll * 13 * 1440)
            decided = roll < 0.92 and at <= now
            decision = ("Deny" if roll < 0.05 else "Approve") if decided else "NotReviewed"
            by = reviewer[slot % len(reviewer)] if reviewer else 0
            principal = ({"@odata.type": "#microsoft.graph.userIdentity", "id": pid, "displayName": name,
                          "userPrincipalName": upn} if kind == "user" else {"id": pid, "displayName": name})
            yield {"id": ids.guid("access-review-decision", n, label, slot), "accessReviewId": instance_id,
                   "decision": decision, "justification": "Still needed for operations" if decided else "",
                   "recommendation": "Approve" if roll > 0.1 else "Deny",
                   "applyResult": "AppliedSuccessfully" if applied else "New",
                   "appliedDateTime": iso_min(opens + 15 * 1440) if applied else None,
                   "appliedBy": {"id": "00000000-0000-0000-0000-000000000000", "displayName": "", "userPrincipalName": ""},
                   "reviewedDateTime": iso_min(at) if decided else None,
                   "reviewedBy": ({"id": t.user_id(by), "displayName": t.user_name(by)[0],
                                   "userPrincipalName": t.user_name(by)[1]} if decided else
                                  {"id": "00000000-0000-0000-0000-000000000000", "displayName": "",
                                   "userPrincipalName": ""}),
                   "principalLink": f"{GRAPH}/v1.0/{'users' if kind == 'user' else 'groups' if kind == 'group' else 'servicePrincipals'}/{pid}",
                   "resourceLink": f"{GRAPH}/beta/roleManagement/directory/roleDefinitions/{role.id}",
                   "resource": {"id": role.id, "displayName": role.name, "type": "directoryRole"},
                   "principal": principal}


def _query(query: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.accessReviewQueryScope", "query": query, "queryType": "MicrosoftGraph",
            "queryRoot": None}
