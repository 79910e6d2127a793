"""Tenant, licences, users, groups and group members -> facts."""

from __future__ import annotations

from functools import partial
from typing import Any

from pimtrail.model import FactRecord

from .base import DatasetPages, Item, odata_type, per_user
from .typed import Flag, Text, Typed, decoder, vouched

P2_PLANS = {"AAD_PREMIUM_P2"}
P1_PLANS = {"AAD_PREMIUM", "AAD_PREMIUM_P2"}


def tenant(pages: DatasetPages) -> list[FactRecord]:
    facts = []
    for item in pages.items():
        domains = item.get("verifiedDomains", [])
        default = next((d.get("name") for d in domains if d.get("isDefault")), None)
        facts.append(FactRecord("tenant", item.required("id"), {
            "id": item.required("id"), "name": item.text("displayName"), "default_domain": default,
            "domains": sorted(d.get("name") for d in domains if d.get("name")),
            "country": item.text("countryLetterCode"), "created": item.when("createdDateTime"),
            "tenant_type": item.text("tenantType"),
        }))
    return facts


def licences(pages: DatasetPages) -> list[FactRecord]:
    facts = []
    for item in pages.items():
        plans = sorted(p.get("servicePlanName") for p in item.get("servicePlans", [])
                       if p.get("servicePlanName"))
        facts.append(FactRecord("licence", item.required("skuId"), {
            "sku_id": item.required("skuId"), "sku": item.text("skuPartNumber"),
            "status": item.text("capabilityStatus"),
            "enabled_units": item.get("prepaidUnits", {}).get("enabled"),
            "consumed_units": item.get("consumedUnits"), "service_plans": plans,
            "entra_p1": bool(P1_PLANS & set(plans)), "entra_p2": bool(P2_PLANS & set(plans)),
        }))
    return facts


def users(pages: DatasetPages, sign_ins: bool = True) -> tuple[list[FactRecord], list[FactRecord]]:
    """Users -> principal facts, plus sign-in activity kept apart: it changes daily, the rest rarely.
    Each fact is built when first used (`FactRecord`): the store builds those of changed users only.
    `sign_ins`: whether this snapshot's sign-ins come from the users' elements (an export without the
    `sign_in_activity` dataset, `sign_in_source`); a users element without `signInActivity` gives none."""
    principals, sign_in_facts = [], []
    for item in pages.items():
        user = item.data
        if type(user) is User:  # decoded typed: its id vouched for, and no signInActivity (it has none)
            principals.append(FactRecord("principal", user.id, principal_id=user.id, element=item.origin,
                                         build=partial(_typed_user, user), textual=True))
            continue
        user_id = item.required("id")
        principals.append(FactRecord("principal", user_id, principal_id=user_id, element=item.origin,
                                     build=lambda item=item, user_id=user_id: item.built(_user, user_id)))
        if sign_ins and item.data.get("signInActivity"):
            sign_in_facts.append(FactRecord("sign_in_activity", user_id, principal_id=user_id, element=item.origin,
                                            build=lambda item=item, user_id=user_id: item.built(_sign_in, user_id)))
    return principals, sign_in_facts


def sign_ins(pages: DatasetPages) -> list[FactRecord]:
    """The `sign_in_activity` dataset (`$select=id,signInActivity` of the users asked for) -> one fact per
    element, `signInActivity: null` included: that user never signed in (all three times None), which is not
    the same as a user the dataset holds no element for (not asked, or gone: no record, PIM-ACT-018)."""
    return per_user(pages, "sign_in_activity", _sign_in)


def _user(item: Item, user_id: str) -> dict[str, Any]:
    user_type = item.text("userType") or "Member"
    upn = item.text("userPrincipalName")
    return {"id": user_id, "type": "user", "name": item.text("displayName"), "upn": upn,
            "user_type": user_type, "guest": user_type == "Guest" or "#EXT#" in (upn or ""),
            "enabled": item.flag("accountEnabled"),
            "synced": bool(item.flag("onPremisesSyncEnabled")),
            "created": item.when("createdDateTime")}


class User(Typed, kw_only=True):
    """A user as `users` selects it (`datasets._USER_SELECT`), every property of Graph's type or null; with
    signInActivity (selected on an export's own users list) it is read as a dict."""

    id: str
    userPrincipalName: Text = None
    displayName: Text = None
    userType: Text = None
    accountEnabled: Flag = None
    onPremisesSyncEnabled: Flag = None
    createdDateTime: Text = None


decode_user = decoder(User, vouched("createdDateTime"))  # as `users` and `_user` check them


def _typed_user(user: User) -> dict[str, Any]:
    """`_user` of a typed user: the same fact."""
    user_type, upn = user.userType or "Member", user.userPrincipalName
    return {"id": user.id, "type": "user", "name": user.displayName, "upn": upn,
            "user_type": user_type, "guest": user_type == "Guest" or "#EXT#" in (upn or ""),
            "enabled": user.accountEnabled, "synced": bool(user.onPremisesSyncEnabled),
            "created": user.createdDateTime}


def _sign_in(item: Item, user_id: str) -> dict[str, Any]:
    if "signInActivity" not in item.data:
        raise item.error("signInActivity", "missing", fix="select it: $select=id,signInActivity")
    activity = item.data["signInActivity"]
    if activity is None:  # Graph's answer for a user who never signed in
        activity = {}
    if not isinstance(activity, dict):
        raise item.error("signInActivity", f"expected an object, found {type(activity).__name__}")
    return {"user_id": user_id,
            "last_sign_in": item.when("lastSignInDateTime", activity),
            "last_non_interactive_sign_in": item.when("lastNonInteractiveSignInDateTime", activity),
            "last_successful_sign_in": item.when("lastSuccessfulSignInDateTime", activity)}


def groups(pages: DatasetPages) -> list[FactRecord]:
    facts = []
    for item in pages.items():
        group_id = item.required("id")
        facts.append(FactRecord("principal", group_id, {
            "id": group_id, "type": "group", "name": item.text("displayName"), "upn": None,
            "description": item.text("description"),
            "role_assignable": bool(item.flag("isAssignableToRole")),
            "security_enabled": item.flag("securityEnabled"),
            "group_types": sorted(item.get("groupTypes", [])),
        }, principal_id=group_id, group_id=group_id))
    return facts


def group_members(pages: DatasetPages) -> list[FactRecord]:
    facts = []
    for item in pages.items():
        member_id = item.required("id")
        group_id = item.parent
        facts.append(FactRecord("group_member", f"{group_id}|{member_id}", {
            "group_id": group_id, "member_id": member_id,
            "member_type": odata_type(item.data) or "user",
            "member_name": item.text("displayName"), "member_upn": item.text("userPrincipalName"),
            "via": "membership",
        }, principal_id=member_id, group_id=group_id))
    return facts


def pim_groups(pages: DatasetPages) -> list[FactRecord]:
    return [FactRecord("pim_group", item.required("id"), {
        "group_id": item.required("id"), "name": item.text("displayName"),
        "status": item.text("status"), "registered": item.when("registeredDateTime"),
    }, group_id=item.required("id")) for item in pages.items()]


def principal_from_expand(obj: dict) -> dict | None:
    """A principal as `$expand=principal` returns it (used for service principals and any
    holder not in the users dataset)."""
    if not obj or not obj.get("id"):
        return None
    for name in ("id", "displayName", "userPrincipalName", "appId"):  # stored as they are: text, or nothing
        if obj.get(name) is not None and type(obj[name]) is not str:
            raise TypeError(f"principal.{name} is {type(obj[name]).__name__}, not text")
    kind = odata_type(obj) or "unknown"
    return {"id": obj["id"], "type": kind, "name": obj.get("displayName"),
            "upn": obj.get("userPrincipalName"), "app_id": obj.get("appId"),
            "source": "role assignment $expand=principal"}
