"""Access reviews: the recurring definition, its instances (one per round and role) and decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .directory import ZERO_GUID
from .ids import GRAPH, at_utc, iso
from .scenario import Principal, Role
from .timeline import ReviewItem, ReviewRound, Timeline

_NOBODY = {"id": ZERO_GUID, "displayName": "", "userPrincipalName": ""}


class Reviews:
    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.s = tl.s
        self.cfg = tl.review_cfg
        self.definition_id = self.s.ids.guid("access-review-definition", self.cfg["name"])
        self.created = at_utc(self.cfg["created"])

    def _reviewers(self, prefix: str = "") -> list[dict[str, Any]]:
        return [{"query": f"{prefix}/users/{self.s.ref(k, ('user',)).id}", "queryType": "MicrosoftGraph",
                 "queryRoot": None} for k in self.cfg["reviewers"]]

    def definitions(self, t: datetime) -> list[dict[str, Any]]:
        if t < self.created:
            return []
        creator = self.s.ref(self.cfg["created_by"], ("user",))
        settings = {
            "mailNotificationsEnabled": True,
            "reminderNotificationsEnabled": True,
            "justificationRequiredOnApproval": True,
            "defaultDecisionEnabled": True,
            "defaultDecision": self.cfg["default_decision"],
            "instanceDurationInDays": self.cfg["duration_days"],
            "autoApplyDecisionsEnabled": self.cfg["auto_apply"],
            "recommendationsEnabled": self.cfg["recommendations"],
            "recommendationLookBackDuration": self.cfg["recommendation_lookback"],
            "decisionHistoriesForReviewersEnabled": False,
            "recurrence": {
                "pattern": {"type": "absoluteMonthly", "interval": 1, "month": 0,
                            "dayOfMonth": self.cfg["day_of_month"], "daysOfWeek": [],
                            "firstDayOfWeek": "sunday", "index": "first"},
                "range": {"type": "noEnd", "numberOfOccurrences": 0, "recurrenceTimeZone": None,
                          "startDate": self.cfg["first"].isoformat(), "endDate": None},
            },
            "applyActions": [{"@odata.type": "#microsoft.graph.removeAccessApplyAction"}],
            "recommendationInsightSettings": [],
        }
        return [{
            "id": self.definition_id,
            "displayName": self.cfg["name"],
            "createdDateTime": iso(self.created),
            "lastModifiedDateTime": iso(self.created),
            "status": "InProgress",
            "descriptionForAdmins": self.cfg["description_for_admins"],
            "descriptionForReviewers": self.cfg["description_for_reviewers"],
            "createdBy": {"id": creator.id, "displayName": creator.name, "userPrincipalName": creator.upn},
            "scope": {
                "@odata.type": "#microsoft.graph.principalResourceMembershipsScope",
                "principalScopes": [_query("/users"), _query("/groups")],
                "resourceScopes": [_query(f"/roleManagement/directory/roleDefinitions/{r.id}")
                                   for r in self.tl.high_risk],
            },
            "reviewers": self._reviewers(),
            "fallbackReviewers": [],
            "additionalNotificationRecipients": [],
            "settings": settings,
            "stageSettings": [],
        }]

    # ------------------------------------------------------------------ instances
    def instance_id(self, rnd: ReviewRound, role: Role) -> str:
        return self.s.ids.guid("access-review-instance", rnd.label, role.key)

    def rounds_at(self, t: datetime) -> list[ReviewRound]:
        return [r for r in self.tl.rounds if r.opens <= t]

    def instances(self, t: datetime) -> list[dict[str, Any]]:
        out = []
        for rnd in self.rounds_at(t):
            status = "InProgress" if t < rnd.closes else ("Completed" if t < rnd.applied else "Applied")
            for role in sorted(self.tl.high_risk, key=lambda r: r.name):
                out.append({
                    "id": self.instance_id(rnd, role),
                    "startDateTime": iso(rnd.opens),
                    "endDateTime": iso(rnd.closes),
                    "status": status,
                    "scope": {
                        "@odata.type": "#microsoft.graph.principalResourceMembershipsScope",
                        "principalScopes": [_query("/v1.0/users"), _query("/v1.0/groups")],
                        "resourceScopes": [_query(f"/beta/roleManagement/directory/roleDefinitions/{role.id}")],
                    },
                    "reviewers": self._reviewers("/v1.0"),
                    "fallbackReviewers": [],
                })
        return out

    def instance_parents(self, t: datetime) -> list[tuple[ReviewRound, Role, str]]:
        return [(rnd, role, self.instance_id(rnd, role)) for rnd in self.rounds_at(t)
                for role in sorted(self.tl.high_risk, key=lambda r: r.name)]

    def decisions(self, rnd: ReviewRound, role: Role, t: datetime) -> list[dict[str, Any]]:
        instance_id = self.instance_id(rnd, role)
        return [self._decision(rnd, item, instance_id, t) for item in rnd.items if item.role is role]

    def _decision(self, rnd: ReviewRound, item: ReviewItem, instance_id: str, t: datetime) -> dict[str, Any]:
        decided = item.at is not None and item.at <= t
        applied = t >= rnd.applied
        p: Principal = item.principal
        collection = "users" if p.kind == "user" else "groups"
        if p.kind == "user":
            principal = {"@odata.type": "#microsoft.graph.userIdentity", "id": p.id, "displayName": p.name,
                         "userPrincipalName": p.upn}
        else:
            principal = {"id": p.id, "displayName": p.name}
        reviewer = ({"id": item.by.id, "displayName": item.by.name, "userPrincipalName": item.by.upn}
                    if decided else dict(_NOBODY))
        return {
            "id": self.s.ids.guid("access-review-decision", rnd.label, item.role.key, p.key),
            "accessReviewId": instance_id,
            "decision": item.decision if decided else "NotReviewed",
            "justification": item.why if decided else "",
            "recommendation": item.recommendation,
            "applyResult": "AppliedSuccessfully" if applied else "New",
            "appliedDateTime": iso(rnd.applied) if applied else None,
            "appliedBy": dict(_NOBODY),
            "reviewedDateTime": iso(item.at) if decided else None,
            "reviewedBy": reviewer,
            "principalLink": f"{GRAPH}/v1.0/{collection}/{p.id}",
            "resourceLink": f"{GRAPH}/beta/roleManagement/directory/roleDefinitions/{item.role.id}",
            "resource": {"id": item.role.id, "displayName": item.role.name, "type": "directoryRole"},
            "principal": principal,
        }


def _query(query: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.accessReviewQueryScope", "query": query,
            "queryType": "MicrosoftGraph", "queryRoot": None}
