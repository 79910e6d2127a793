"""Access reviews: the recurring definitions, their instances (one per round and role) and decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .directory import ZERO_GUID
from .ids import GRAPH, at_utc, iso
from .scenario import Principal, Role
from .timeline import Review, ReviewItem, ReviewRound, Timeline

_NOBODY = {"id": ZERO_GUID, "displayName": "", "userPrincipalName": ""}


class Reviews:
    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.s = tl.s

    def definition_id(self, rv: Review) -> str:
        return self.s.ids.guid("access-review-definition", rv.cfg["name"])

    def defined_at(self, t: datetime) -> list[Review]:
        return [rv for rv in self.tl.reviews if at_utc(rv.cfg["created"]) <= t]

    def _reviewers(self, rv: Review, prefix: str = "") -> list[dict[str, Any]]:
        return [{"query": f"{prefix}/users/{self.s.ref(k, ('user',)).id}", "queryType": "MicrosoftGraph",
                 "queryRoot": None} for k in rv.cfg["reviewers"]]

    def definitions(self, t: datetime) -> list[dict[str, Any]]:
        return [self._definition(rv) for rv in self.defined_at(t)]

    def _definition(self, rv: Review) -> dict[str, Any]:
        cfg = rv.cfg
        created = at_utc(cfg["created"])
        creator = self.s.ref(cfg["created_by"], ("user",))
        settings = {
            "mailNotificationsEnabled": True,
            "reminderNotificationsEnabled": True,
            "justificationRequiredOnApproval": True,
            "defaultDecisionEnabled": True,
            "defaultDecision": cfg["default_decision"],
            "instanceDurationInDays": cfg["duration_days"],
            "autoApplyDecisionsEnabled": cfg["auto_apply"],
            "recommendationsEnabled": cfg["recommendations"],
            "recommendationLookBackDuration": cfg["recommendation_lookback"],
            "decisionHistoriesForReviewersEnabled": False,
            "recurrence": {
                "pattern": {"type": "absoluteMonthly", "interval": 1, "month": 0,
                            "dayOfMonth": cfg["day_of_month"], "daysOfWeek": [],
                            "firstDayOfWeek": "sunday", "index": "first"},
                "range": {"type": "noEnd", "numberOfOccurrences": 0, "recurrenceTimeZone": None,
                          "startDate": cfg["first"].isoformat(), "endDate": None},
            },
            "applyActions": [{"@odata.type": "#microsoft.graph.removeAccessApplyAction"}],
            "recommendationInsightSettings": [],
        }
        return {
            "id": self.definition_id(rv),
            "displayName": cfg["name"],
            "createdDateTime": iso(created),
            "lastModifiedDateTime": iso(created),
            "status": "InProgress",
            "descriptionForAdmins": cfg["description_for_admins"],
            "descriptionForReviewers": cfg["description_for_reviewers"],
            "createdBy": {"id": creator.id, "displayName": creator.name, "userPrincipalName": creator.upn},
            "scope": {
                "@odata.type": "#microsoft.graph.principalResourceMembershipsScope",
                "principalScopes": [_query("/users"), _query("/groups")],
                "resourceScopes": [_query(f"/roleManagement/directory/roleDefinitions/{r.id}") for r in rv.roles],
            },
            "reviewers": self._reviewers(rv),
            "fallbackReviewers": [],
            "additionalNotificationRecipients": [],
            "settings": settings,
            "stageSettings": [],
        }

    # ------------------------------------------------------------------ instances
    def instance_id(self, rnd: ReviewRound, role: Role) -> str:
        return self.s.ids.guid("access-review-instance", rnd.label, role.key)  # a role is in one review only

    @staticmethod
    def rounds_at(rv: Review, t: datetime) -> list[ReviewRound]:
        return [r for r in rv.rounds if r.opens <= t]

    def instances(self, rv: Review, t: datetime) -> list[dict[str, Any]]:
        out = []
        for rnd in self.rounds_at(rv, t):
            status = "InProgress" if t < rnd.closes else ("Completed" if t < rnd.applied else "Applied")
            for role in sorted(rv.roles, key=lambda r: r.name):
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
                    "reviewers": self._reviewers(rv, "/v1.0"),
                    "fallbackReviewers": [],
                })
        return out

    def instance_parents(self, rv: Review, t: datetime) -> list[tuple[ReviewRound, Role, str]]:
        return [(rnd, role, self.instance_id(rnd, role)) for rnd in self.rounds_at(rv, t)
                for role in sorted(rv.roles, key=lambda r: r.name)]

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
