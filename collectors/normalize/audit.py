"""Directory audit entries -> append-only events keyed by their audit id.

An entry of Graph's shape is decoded straight into typed objects (`decode_entry`, `collectors.normalize.typed`) and
normalised from them (`_typed`); any other entry is parsed into a dict and normalised from that (`_normalise`), which
names what is wrong with it. Both give the same event for an entry the first takes (tests/test_typed_elements.py): a
large tenant's first export holds 180,000 entries, and the typed path takes ~1.5-2.5 s less of the worker making
them (docs/benchmarks.md, "First ingest, round 21").
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, Optional

from pimtrail.model import EventRecord
from pimtrail.timeutil import parse_canonical

from .base import DatasetPages, Item
from .typed import Text, Typed, UserIdentity, decoder, vouched

PRINCIPAL_TARGETS = {"user": "user", "group": "group", "serviceprincipal": "service_principal"}


_TEXT = (str, type(None))


def _texts(item: Item, actor: dict | None, role: dict | None, principal: dict | None, group: dict | None) -> None:
    """What readers take as text of the event's actor, role, principal and group (ids, names) is text, or absent:
    stored otherwise, it would break them later. Inline checks: one call an event, 180,000 in a large tenant's log."""
    if actor is not None and not (type(actor["id"]) in _TEXT and type(actor.get("upn")) in _TEXT
                                  and type(actor["name"]) in _TEXT):
        raise item.error("initiatedBy", "its id, userPrincipalName and displayName must be text")
    if role is not None and not (type(role["id"]) in _TEXT and type(role["name"]) in _TEXT) or \
            principal is not None and not (type(principal["id"]) in _TEXT and type(principal["name"]) in _TEXT
                                           and type(principal["upn"]) in _TEXT) or \
            group is not None and type(group["id"]) not in _TEXT:
        raise item.error("targetResources", "the ids and names of its role, principal and group must be text")


def _actor(item: Item) -> dict[str, Any] | None:
    initiated = item.get("initiatedBy", {})
    user, actor = initiated.get("user"), None
    if user and (user.get("id") or user.get("userPrincipalName")):
        actor = {"type": "user", "id": user.get("id"), "upn": user.get("userPrincipalName"),
                 "name": user.get("displayName")}
    else:
        app = initiated.get("app")
        if app and (app.get("servicePrincipalId") or app.get("appId")):
            actor = {"type": "app", "id": app.get("servicePrincipalId"), "app_id": app.get("appId"),
                     "name": app.get("displayName")}
    return actor


# -- entries of Graph's shape, typed (`typed`) -------------------------------------------------------------------
# Graph's v1.0 directoryAudit and its complex types: every property, each text or null
class _User(UserIdentity):
    """Graph's auditUserIdentity."""

    homeTenantId: Text = None
    homeTenantName: Text = None


class _App(Typed):
    appId: Text = None
    displayName: Text = None
    servicePrincipalId: Text = None
    servicePrincipalName: Text = None


class _Initiator(Typed):
    user: Optional[_User] = None
    app: Optional[_App] = None


class _Property(Typed):
    displayName: Text = None
    oldValue: Text = None
    newValue: Text = None


class _Target(Typed):
    id: Text = None
    displayName: Text = None
    type: Text = None
    userPrincipalName: Text = None
    groupType: Text = None
    modifiedProperties: Optional[list[_Property]] = None


class _Detail(Typed):
    key: Text = None
    value: Text = None


class Entry(Typed, kw_only=True):
    """A directory audit entry of Graph's shape (`decode_entry`); `activityDateTime` in its canonical form."""

    id: str
    activityDateTime: str
    activityDisplayName: Text = None
    category: Text = None
    correlationId: Text = None
    loggedByService: Text = None
    operationType: Text = None
    result: Text = None
    resultReason: Text = None
    initiatedBy: Optional[_Initiator] = None
    targetResources: Optional[list[_Target]] = None
    additionalDetails: Optional[list[_Detail]] = None


decode_entry = decoder(Entry, vouched("activityDateTime"))  # as `directory_audits` checks them


def _typed(entry: Entry) -> tuple[dict[str, Any], str | None, str | None, str | None]:
    """`_normalise` of a typed entry: the same event. Every value is text or None (its types), so none of
    `_normalise`'s checks can fail."""
    targets, role, principal, group = [], None, None, None
    for t in entry.targetResources or ():
        target = {"type": t.type, "id": t.id, "name": t.displayName, "upn": t.userPrincipalName}
        targets.append(target)
        kind = (t.type or "").lower()
        if role is None and kind == "role":
            role = target
        if principal is None and kind in PRINCIPAL_TARGETS:
            principal = target
        if group is None and kind == "group":
            group = target
    actor, initiated = None, entry.initiatedBy
    if initiated is not None:
        user, app = initiated.user, initiated.app
        if user is not None and (user.id or user.userPrincipalName):
            actor = {"type": "user", "id": user.id, "upn": user.userPrincipalName, "name": user.displayName}
        elif app is not None and (app.servicePrincipalId or app.appId):
            actor = {"type": "app", "id": app.servicePrincipalId, "app_id": app.appId, "name": app.displayName}
    correlation = entry.correlationId
    data = {
        "id": entry.id, "time": entry.activityDateTime, "activity": entry.activityDisplayName,
        "category": entry.category, "service": entry.loggedByService, "operation": entry.operationType,
        "result": entry.result, "result_reason": entry.resultReason, "correlation_id": correlation,
        "initiated_by": actor, "targets": targets,
        "role_id": role["id"] if role else None, "role_name": role["name"] if role else None,
        "principal": principal, "group_id": group["id"] if group else None,
        "details": {d.key: d.value for d in entry.additionalDetails or () if d.key},
    }
    return data, principal["id"] if principal else None, data["role_id"], correlation


# -- every entry ------------------------------------------------------------------------------------------------
def directory_audits(pages: DatasetPages) -> list[EventRecord]:
    """One event per entry. The id and time are checked here (or by `decode_entry`); the rest is normalised when
    the store asks for it, which it does only for entries it does not hold yet (`EventRecord`)."""
    events = []
    for item in pages.items():
        entry = item.data
        if type(entry) is Entry:  # typed as read (`decode_entry`): its id and time are vouched for
            events.append(EventRecord("audit", entry.id, parse_canonical(entry.activityDateTime),
                                      build=partial(_typed, entry), textual=True))
            continue
        occurred = item.when("activityDateTime")  # YYYY-MM-DDTHH:MM:SSZ, checked to be a real moment
        if occurred is None:
            raise item.error("activityDateTime", "missing")
        # read without checking that form again (0.68 -> 0.26 us an entry)
        events.append(EventRecord("audit", item.required("id"), parse_canonical(occurred),
                                  build=partial(item.built, _normalise, occurred)))
    return events


def _named(details: dict[Any, Any]) -> dict[str, Any]:
    """Details named by a number or true (the hashable values JSON has besides texts), as JSON names them ("7",
    "true", "1.5e-07"): the canonical text reads so, and could not sort such a name among texts (a traceback,
    before)."""
    return {key if type(key) is str else json.dumps(key): value for key, value in details.items()}


def _normalise(item: Item, occurred: str) -> tuple[dict[str, Any], str | None, str | None, str | None]:
    targets, role, principal, group = [], None, None, None
    for t in item.get("targetResources", []):  # the first target of each type
        target = {"type": t.get("type"), "id": t.get("id"), "name": t.get("displayName"),
                  "upn": t.get("userPrincipalName")}
        targets.append(target)
        kind = (target["type"] or "").lower()
        role = role or (target if kind == "role" else None)
        principal = principal or (target if kind in PRINCIPAL_TARGETS else None)
        group = group or (target if kind == "group" else None)
    actor = _actor(item)
    _texts(item, actor, role, principal, group)
    details = {d.get("key"): d.get("value") for d in item.get("additionalDetails", []) if d.get("key")}
    if not all(type(key) is str for key in details):
        details = _named(details)
    data = {
        "id": item.required("id"), "time": occurred, "activity": item.text("activityDisplayName"),
        "category": item.text("category"), "service": item.text("loggedByService"),
        "operation": item.text("operationType"), "result": item.text("result"),
        "result_reason": item.text("resultReason"), "correlation_id": item.text("correlationId"),
        "initiated_by": actor, "targets": targets,
        "role_id": role["id"] if role else None, "role_name": role["name"] if role else None,
        "principal": principal, "group_id": group["id"] if group else None,
        "details": details,
    }
    return data, principal["id"] if principal else None, data["role_id"], data["correlation_id"]
