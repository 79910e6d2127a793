"""Authentication: method registration, FIDO2 keys, Conditional Access, contexts and strengths."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from .ids import at_utc, context_url, iso
from .scenario import Principal
from .timeline import Timeline

KEY_METHODS = ("fido2", "passKeyDeviceBound")  # reported only once a key is registered
_PASSWORDLESS = {"fido2", "passKeyDeviceBound", "windowsHelloForBusiness", "microsoftAuthenticatorPasswordless"}
_SSPR = {"microsoftAuthenticatorPush", "mobilePhone", "softwareOneTimePasscode", "email"}
_REPORT_LAG = timedelta(hours=4)  # the registration report is refreshed a few hours before collection


class Authentication:
    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.s = tl.s

    # ------------------------------------------------------------------ registration report
    def methods_at(self, p: Principal, t: datetime) -> list[str]:
        methods = [m for m in p.methods if m not in KEY_METHODS]
        if self.tl.has_security_key(p, t):
            reported = [m for m in p.methods if m in KEY_METHODS] or ["fido2"]
            methods += reported
        return methods

    def registration_details(self, t: datetime) -> list[dict[str, Any]]:
        holders = self.tl.role_holders(t)
        out = []
        for p in sorted(self.s.people(), key=lambda x: x.upn):
            if p.created > t:
                continue
            methods = self.methods_at(p, t)
            registered = bool(methods)
            sspr_registered = bool(_SSPR & set(methods))
            if any(m in KEY_METHODS for m in methods):
                preferred_system = ["Fido2"]
            elif "microsoftAuthenticatorPush" in methods:
                preferred_system = ["Push"]
            elif methods:
                preferred_system = ["Sms"] if "mobilePhone" in methods else ["Oath"]
            else:
                preferred_system = []
            out.append({
                "id": p.id,
                "userPrincipalName": p.upn,
                "userDisplayName": p.name,
                "userType": "guest" if p.guest else "member",
                "isAdmin": p.key in holders,
                "isSsprRegistered": sspr_registered,
                "isSsprEnabled": not p.guest,
                "isSsprCapable": sspr_registered and not p.guest,
                "isMfaRegistered": registered,
                "isMfaCapable": registered,
                "isPasswordlessCapable": bool(_PASSWORDLESS & set(methods)),
                "methodsRegistered": methods,
                "isSystemPreferredAuthenticationMethodEnabled": True,
                "systemPreferredAuthenticationMethods": preferred_system,
                "userPreferredMethodForSecondaryAuthentication": _preferred(methods),
                "lastUpdatedDateTime": iso(t - _REPORT_LAG),
            })
        return out

    # ------------------------------------------------------------------ FIDO2 keys
    def fido2_parents(self, t: datetime) -> list[Principal]:
        """Users who hold or are eligible for a role (directly or via a group) at `t`."""
        holders = self.tl.role_holders(t)
        return sorted([self.s.principals[k] for k in holders if self.s.principals[k].created <= t],
                      key=lambda p: p.upn)

    def fido2_methods(self, p: Principal, t: datetime) -> list[dict[str, Any]]:
        out = []
        for key in p.fido2:
            if key["registered"] > t:
                continue
            thumbprint = hashlib.sha1(f"attestation:{key['aaguid']}".encode()).hexdigest()
            out.append({
                "id": self.s.ids.token("fido2", p.key, key["name"], iso(key["registered"])),
                "displayName": key["name"],
                "createdDateTime": iso(key["registered"]),
                "aaGuid": key["aaguid"],
                "model": key["model"],
                "attestationCertificates": [thumbprint],
                "attestationLevel": "attested",
                "passkeyType": "deviceBound",
            })
        return out

    # ------------------------------------------------------------------ Conditional Access
    def strengths(self) -> dict[str, dict[str, Any]]:
        out = {}
        for st in self.s.raw.get("auth_strength", []):
            created = iso(st["created"])
            out[st["id"]] = {
                "id": st["id"],
                "createdDateTime": created,
                "modifiedDateTime": created,
                "displayName": st["name"],
                "description": st["description"],
                "policyType": "builtIn",
                "requirementsSatisfied": "mfa",
                "allowedCombinations": list(st["combinations"]),
                "combinationConfigurations@odata.context": context_url(
                    f"policies/authenticationStrengthPolicies('{st['id']}')/combinationConfigurations"),
                "combinationConfigurations": [],
            }
        return out

    def authentication_strengths(self, t: datetime) -> list[dict[str, Any]]:
        return list(self.strengths().values())

    def authentication_contexts(self, t: datetime) -> list[dict[str, Any]]:
        return [{"id": c["id"], "displayName": c["name"], "description": c["description"],
                 "isAvailable": c.get("available", True)}
                for c in self.s.raw.get("auth_context", []) if at_utc(c["created"]) <= t]

    def ca_policies(self, t: datetime) -> list[dict[str, Any]]:
        strengths = self.strengths()
        out = []
        for cfg in self.s.raw.get("ca_policy", []):
            created = at_utc(cfg["created"])
            if created > t:
                continue
            state, name, roles, modified = cfg["state"], cfg["name"], cfg.get("roles", []), None
            for change in cfg.get("changes", []):  # a change sets any of a new state, name and roles
                if set(change) - {"at", "state", "name", "roles"} or len(change) < 2:
                    raise ValueError(f"{cfg['key']}: a change sets `state`, `name` and/or `roles` at `at`")
                if at_utc(change["at"]) <= t:
                    state, modified = change.get("state", state), at_utc(change["at"])
                    name, roles = change.get("name", name), change.get("roles", roles)
            strength = strengths[cfg["strength"]] if "strength" in cfg else None
            if strength is not None:
                strength = {k: v for k, v in strength.items() if not k.startswith("combinationConfigurations")}
            out.append({
                "id": self.s.ids.guid("ca-policy", cfg["key"]),
                "templateId": None,
                "displayName": name,
                "createdDateTime": iso(created),
                "modifiedDateTime": iso(modified),
                "state": state,
                "sessionControls": None,
                "conditions": {
                    "userRiskLevels": [],
                    "signInRiskLevels": [],
                    "clientAppTypes": list(cfg.get("client_app_types", ["all"])),
                    "servicePrincipalRiskLevels": [],
                    "platforms": None,
                    "locations": None,
                    "devices": None,
                    "clientApplications": None,
                    "applications": {
                        "includeApplications": list(cfg.get("apps", [])),
                        "excludeApplications": [],
                        "includeUserActions": [],
                        "includeAuthenticationContextClassReferences": list(cfg.get("auth_contexts", [])),
                        "applicationFilter": None,
                    },
                    "users": {
                        "includeUsers": list(cfg.get("users", [])),
                        "excludeUsers": [self.s.ref(k, ("user",)).id for k in cfg.get("exclude_users", [])],
                        "includeGroups": [],
                        "excludeGroups": [],
                        "includeRoles": [self.s.role_by_key(k).id for k in roles],
                        "excludeRoles": [],
                        "includeGuestsOrExternalUsers": None,
                        "excludeGuestsOrExternalUsers": None,
                    },
                },
                "grantControls": {
                    "operator": "OR",
                    "builtInControls": list(cfg.get("grant", [])),
                    "customAuthenticationFactors": [],
                    "termsOfUse": [],
                    "authenticationStrength@odata.context": context_url(
                        f"identity/conditionalAccess/policies('{self.s.ids.guid('ca-policy', cfg['key'])}')"
                        "/grantControls/authenticationStrength/$entity"),
                    "authenticationStrength": strength,
                },
            })
        return out


def _preferred(methods: list[str]) -> str:
    if "microsoftAuthenticatorPush" in methods:
        return "push"
    if "softwareOneTimePasscode" in methods:
        return "oath"
    if "mobilePhone" in methods:
        return "sms"
    return "none"
