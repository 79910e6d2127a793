"""Authentication methods, Conditional Access, authentication contexts and strengths."""

from __future__ import annotations

from typing import Any

from pimtrail.model import FactRecord

from .base import DatasetPages, Item, per_user
from .typed import Flag, Text, Texts, Typed, decoder, vouched

PHISHING_RESISTANT_METHODS = {"fido2", "passKeyDeviceBound", "passKeyDeviceBoundAuthenticator",
                              "passKeyDeviceBoundWindowsHello", "windowsHelloForBusiness",
                              "x509CertificateMultiFactor"}


def registrations(pages: DatasetPages) -> list[FactRecord]:
    """Registration rows -> facts, each built when first used (the store builds changed rows only); rows of Graph's
    shape decoded typed (`decode_registration`)."""
    return per_user(pages, "auth_registration", _registration, (Registration, _typed_registration))


def _registration(item: Item, user_id: str) -> dict[str, Any]:
    methods = item.get("methodsRegistered", [])
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise item.error("methodsRegistered", "expected a list of method names")
    methods = sorted(methods)
    return {
        "user_id": user_id, "upn": item.text("userPrincipalName"), "methods": methods,
        "phishing_resistant": bool(PHISHING_RESISTANT_METHODS & set(methods)),
        "mfa_registered": item.flag("isMfaRegistered"), "mfa_capable": item.flag("isMfaCapable"),
        "passwordless_capable": item.flag("isPasswordlessCapable"),
        "admin": item.flag("isAdmin"), "default_method": item.text("defaultMfaMethod"),
        # lastUpdatedDateTime is the report's refresh time, not a change of the user's methods:
        # kept in the raw receipt, left out of the fact so an unchanged registration stays one row
    }


class Registration(Typed, kw_only=True):
    """Graph's v1.0 userRegistrationDetails (and beta's defaultMfaMethod), every property of its type or null."""

    id: str
    userPrincipalName: Text = None
    userDisplayName: Text = None
    userType: Text = None
    isAdmin: Flag = None
    isSsprRegistered: Flag = None
    isSsprEnabled: Flag = None
    isSsprCapable: Flag = None
    isMfaRegistered: Flag = None
    isMfaCapable: Flag = None
    isPasswordlessCapable: Flag = None
    methodsRegistered: Texts = None
    isSystemPreferredAuthenticationMethodEnabled: Flag = None
    systemPreferredAuthenticationMethods: Texts = None
    userPreferredMethodForSecondaryAuthentication: Text = None
    defaultMfaMethod: Text = None
    lastUpdatedDateTime: Text = None


decode_registration = decoder(Registration, vouched())  # an id, as `per_user` requires


def _typed_registration(row: Registration) -> dict[str, Any]:
    """`_registration` of a typed row: the same fact."""
    methods = sorted(row.methodsRegistered or ())
    return {
        "user_id": row.id, "upn": row.userPrincipalName, "methods": methods,
        "phishing_resistant": not PHISHING_RESISTANT_METHODS.isdisjoint(methods),
        "mfa_registered": row.isMfaRegistered, "mfa_capable": row.isMfaCapable,
        "passwordless_capable": row.isPasswordlessCapable, "admin": row.isAdmin,
        "default_method": row.defaultMfaMethod,
    }


def fido2_keys(pages: DatasetPages) -> list[FactRecord]:
    facts = []
    for item in pages.items():
        key_id = item.required("id")
        facts.append(FactRecord("fido2_key", f"{item.parent}|{key_id}", {
            "user_id": item.parent, "id": key_id, "name": item.text("displayName"),
            "model": item.text("model"), "aaguid": item.text("aaGuid"),
            "attestation": item.text("attestationLevel"), "created": item.when("createdDateTime"),
        }, principal_id=item.parent))
    return facts


def _sorted(item: Item, data: dict[str, Any], name: str, field: str) -> list[str]:
    """A list of texts in the element (ids, names, values Graph enumerates), sorted; anything else InputError."""
    values = data.get(name)
    if values is None:
        return []
    if type(values) is not list or not set(map(type, values)) <= {str}:
        raise item.error(f"{field}.{name}" if field else name, "expected a list of texts")
    return sorted(values)


_STRENGTH, _FREQUENCY = "grantControls.authenticationStrength", "sessionControls.signInFrequency"


def ca_policies(pages: DatasetPages) -> list[FactRecord]:
    facts = []
    for item in pages.items():
        cond = item.get("conditions", {})
        users = cond.get("users") or {}
        apps = cond.get("applications") or {}
        grant = item.get("grantControls") or {}
        strength = grant.get("authenticationStrength") or {}
        session = item.get("sessionControls") or {}
        frequency = session.get("signInFrequency") or {}
        facts.append(FactRecord("ca_policy", item.required("id"), {
            "id": item.required("id"), "name": item.text("displayName"), "state": item.text("state"),
            "include_users": _sorted(item, users, "includeUsers", "conditions.users"),
            "exclude_users": _sorted(item, users, "excludeUsers", "conditions.users"),
            "include_groups": _sorted(item, users, "includeGroups", "conditions.users"),
            "exclude_groups": _sorted(item, users, "excludeGroups", "conditions.users"),
            "include_roles": _sorted(item, users, "includeRoles", "conditions.users"),
            "exclude_roles": _sorted(item, users, "excludeRoles", "conditions.users"),
            "include_apps": _sorted(item, apps, "includeApplications", "conditions.applications"),
            "auth_contexts": _sorted(item, apps, "includeAuthenticationContextClassReferences",
                                     "conditions.applications"),
            "client_app_types": _sorted(item, cond, "clientAppTypes", "conditions"),
            "grant_operator": item.text_in(grant, "operator", "grantControls.operator"),
            "grant_controls": _sorted(item, grant, "builtInControls", "grantControls"),
            "auth_strength_id": item.text_in(strength, "id", f"{_STRENGTH}.id"),
            "auth_strength_name": item.text_in(strength, "displayName", f"{_STRENGTH}.displayName"),
            "sign_in_frequency": ({"value": item.typed_in(frequency, "value", f"{_FREQUENCY}.value", int),
                                   "type": item.text_in(frequency, "type", f"{_FREQUENCY}.type")}
                                  if frequency.get("isEnabled") else None),
            "modified": item.when("modifiedDateTime"),
        }))
    return facts


def auth_contexts(pages: DatasetPages) -> list[FactRecord]:
    return [FactRecord("auth_context", item.required("id"), {
        "id": item.required("id"), "name": item.text("displayName"),
        "description": item.text("description"), "available": item.flag("isAvailable"),
    }) for item in pages.items()]


def auth_strengths(pages: DatasetPages) -> list[FactRecord]:
    return [FactRecord("auth_strength", item.required("id"), {
        "id": item.required("id"), "name": item.text("displayName"),
        "policy_type": item.text("policyType"),
        "combinations": _sorted(item, item.data, "allowedCombinations", ""),
        "requirements": item.text("requirementsSatisfied"),
    }) for item in pages.items()]
