"""Access reviews: definitions, instances and decisions.

Decisions are versioned facts, not events: a decision record changes while its instance runs
(NotReviewed -> Deny -> applied), and the history must show each stage.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Optional

from pimtrail.model import FactRecord

from .base import DatasetPages, Item, odata_name, odata_type
from .typed import Text, Typed, UserIdentity, decoder, vouched


def _identity(item: Item, name: str) -> dict[str, Any] | None:
    """A user identity the element names in field `name` (its texts checked: stored as they are)."""
    obj = item.get(name)
    if not obj:
        return None
    return {"id": item.text_in(obj, "id", f"{name}.id"),
            "name": item.text_in(obj, "displayName", f"{name}.displayName"),
            "upn": item.text_in(obj, "userPrincipalName", f"{name}.userPrincipalName"), "type": odata_type(obj)}


def _queries(item: Item, scope: dict[str, Any], name: str) -> list[str | None] | None:
    return [item.text_in(s, "query", f"scope.{name}[{i}].query") for i, s in enumerate(scope.get(name) or [])] or None


def _reviewer(item: Item, reviewer: dict[str, Any], i: int) -> str:
    """A reviewer scope's query (who reviews): Graph gives one for each."""
    query = item.text_in(reviewer, "query", f"reviewers[{i}].query")
    if not query:
        raise item.error(f"reviewers[{i}].query", "missing", fix="Graph gives each reviewer scope a query")
    return query


def definitions(pages: DatasetPages) -> list[FactRecord]:
    facts = []
    for item in pages.items():
        settings = item.get("settings", {})
        recurrence = (settings.get("recurrence") or {}).get("pattern") or {}
        scope = item.get("scope", {})

        def setting(name: str, kind: type, item: Item = item, settings: dict = settings) -> Any:
            return item.typed_in(settings, name, f"settings.{name}", kind)

        facts.append(FactRecord("access_review_definition", item.required("id"), {
            "id": item.required("id"), "name": item.text("displayName"), "status": item.text("status"),
            "description": item.text("descriptionForAdmins"),
            "scope_query": item.text_in(scope, "query", "scope.query"), "scope_type": odata_type(scope),
            "scopes": _queries(item, scope, "principalScopes"),
            "resource_scopes": _queries(item, scope, "resourceScopes"),
            "reviewers": [_reviewer(item, r, i) for i, r in enumerate(item.get("reviewers", []))],
            "default_decision": setting("defaultDecision", str),
            "default_decision_enabled": setting("defaultDecisionEnabled", bool),
            "auto_apply": setting("autoApplyDecisionsEnabled", bool),
            "justification_required": setting("justificationRequiredOnApproval", bool),
            "recommendations": setting("recommendationsEnabled", bool),
            "recurrence": item.typed_in(recurrence, "type", "settings.recurrence.pattern.type", str),
            "recurrence_interval": item.typed_in(recurrence, "interval", "settings.recurrence.pattern.interval", int),
            "instance_duration_days": setting("instanceDurationInDays", int),
            "created": item.when("createdDateTime"),
            "created_by": _identity(item, "createdBy"),
        }))
    return facts


def instances(pages: DatasetPages) -> list[FactRecord]:
    return [FactRecord("access_review_instance", item.required("id"), {
        "id": item.required("id"), "definition_id": item.parent,
        "status": item.text("status"), "start": item.when("startDateTime"), "end": item.when("endDateTime"),
    }) for item in pages.items()]


def decisions(pages: DatasetPages) -> list[FactRecord]:
    """Decisions -> facts, each built when first used: a review of 20,000 assignments changes a few
    hundred decisions a day, and the store builds only those (`FactRecord`). Decisions of Graph's shape are
    decoded typed (`decode_decision`)."""
    facts = []
    for item in pages.items():
        instance_id = item.parent.partition("/")[2]
        decision = item.data
        if type(decision) is Decision:  # its id, moments and identities vouched for (`_vouch`)
            principal = decision.principal
            facts.append(FactRecord("access_review_decision", f"{instance_id}|{decision.id}",
                                    principal_id=principal.id if principal is not None else None,
                                    element=item.origin, build=partial(_typed_decision, decision, item.parent),
                                    textual=True))
            continue
        decision_id = item.required("id")
        principal = item.get("principal")
        facts.append(FactRecord("access_review_decision", f"{instance_id}|{decision_id}",
                                principal_id=item.text_in(principal, "id", "principal.id")
                                if isinstance(principal, dict) else None,
                                element=item.origin, build=lambda item=item: item.built(_decision)))
    return facts


def _decision(item: Item) -> dict[str, Any]:
    definition_id, _, instance_id = item.parent.partition("/")
    resource = item.get("resource", {})
    return {
        "id": item.required("id"), "definition_id": definition_id,
        "instance_id": item.text("accessReviewId") or instance_id,
        "decision": item.text("decision"), "recommendation": item.text("recommendation"),
        "justification": item.text("justification"),
        "reviewed_by": _identity(item, "reviewedBy"),
        "reviewed_at": item.when("reviewedDateTime"),
        "apply_result": item.text("applyResult"), "applied_at": item.when("appliedDateTime"),
        "applied_by": _identity(item, "appliedBy"),
        "principal": _identity(item, "principal") or {},
        "resource": {"id": item.text_in(resource, "id", "resource.id"),
                     "name": item.text_in(resource, "displayName", "resource.displayName"),
                     "type": item.text_in(resource, "type", "resource.type")},
    }


# -- decisions of Graph's shape, typed (`typed`) ---------------------------------------------------------------
class _Resource(Typed):
    id: Text = None
    displayName: Text = None
    type: Text = None


class Decision(Typed, kw_only=True):
    """Graph's v1.0 accessReviewInstanceDecisionItem (but its insights), every property of its type or null."""

    id: str
    accessReviewId: Text = None
    decision: Text = None
    recommendation: Text = None
    justification: Text = None
    applyResult: Text = None
    appliedDateTime: Text = None
    appliedBy: Optional[UserIdentity] = None
    reviewedDateTime: Text = None
    reviewedBy: Optional[UserIdentity] = None
    principal: Optional[UserIdentity] = None
    principalLink: Text = None
    resource: Optional[_Resource] = None
    resourceLink: Text = None


def _identities(decision: Decision) -> bool:
    """Identities that are not empty: `_identity` gives none for `{}`, which a typed identity does not tell from one
    whose properties are all null (those go the dict path)."""
    return not any(ident is not None and ident.id is None and ident.displayName is None
                   and ident.userPrincipalName is None and ident.ipAddress is None and ident.odata_type is None
                   for ident in (decision.appliedBy, decision.reviewedBy, decision.principal))


decode_decision = decoder(Decision, vouched("reviewedDateTime", "appliedDateTime", also=_identities))


def _typed_identity(ident: UserIdentity | None) -> dict[str, Any] | None:
    if ident is None:
        return None
    return {"id": ident.id, "name": ident.displayName, "upn": ident.userPrincipalName,
            "type": odata_name(ident.odata_type)}


def _typed_decision(decision: Decision, parent: str) -> dict[str, Any]:
    """`_decision` of a typed decision of the instance `parent` names: the same fact."""
    definition_id, _, instance_id = parent.partition("/")
    resource = decision.resource
    return {
        "id": decision.id, "definition_id": definition_id, "instance_id": decision.accessReviewId or instance_id,
        "decision": decision.decision, "recommendation": decision.recommendation,
        "justification": decision.justification,
        "reviewed_by": _typed_identity(decision.reviewedBy), "reviewed_at": decision.reviewedDateTime,
        "apply_result": decision.applyResult, "applied_at": decision.appliedDateTime,
        "applied_by": _typed_identity(decision.appliedBy),
        "principal": _typed_identity(decision.principal) or {},
        "resource": {"id": resource.id, "name": resource.displayName, "type": resource.type}
        if resource is not None else {"id": None, "name": None, "type": None},
    }
