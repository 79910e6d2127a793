"""Profiles (data files in controls/data/profiles) merged with the user's pimtrail.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from pimtrail.config import Config
from pimtrail.errors import InputError

DATA = resources.files("pimtrail.controls") / "data"
RULE_KEYS = ("max_activation_hours", "require_mfa", "require_justification", "require_ticket",
             "require_approval", "min_approvers")


@dataclass(frozen=True)
class TierRule:
    tier: int
    max_activation_hours: float
    require_mfa: bool
    require_justification: bool
    require_ticket: bool
    require_approval: bool
    min_approvers: int


@dataclass
class Profile:
    name: str
    description: str
    params: dict[str, Any]
    tiers: dict[int, TierRule]
    role_tiers: dict[str, int] = field(default_factory=dict)  # template id or lower-case name -> tier
    role_rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-role overrides of the tier rule

    def tier_of(self, role: dict[str, Any] | None) -> int | None:
        """A role definition fact -> its tier (0 most sensitive); None if not privileged."""
        if not role:
            return None
        for key in (role.get("id"), role.get("template_id"), (role.get("name") or "").lower()):
            if key and key in self.role_tiers:
                return self.role_tiers[key]
        if role.get("privileged"):
            return 1  # Microsoft flags it privileged and no profile classified it: treat as tier 1
        return None

    def rule_for(self, role: dict[str, Any]) -> TierRule | None:
        """The activation policy a role must have: its tier's rule with any per-role override."""
        tier = self.tier_of(role)
        if tier is None or tier not in self.tiers:
            return None
        rule = self.tiers[tier]
        for key in (role.get("id"), role.get("template_id"), (role.get("name") or "").lower()):
            if key and key in self.role_rules:
                return TierRule(**{**vars(rule), **self.role_rules[key]})
        return rule

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "params": self.params,
                "tiers": {str(t): vars(r) for t, r in sorted(self.tiers.items())}}


def role_catalogue() -> dict[str, str]:
    """Role display name -> template id for the built-in roles pimtrail knows."""
    return tomllib.loads((DATA / "roles.toml").read_text())


def available_profiles() -> list[str]:
    return sorted(p.name[:-5] for p in (DATA / "profiles").iterdir() if p.name.endswith(".toml"))


def _raw(name: str) -> dict[str, Any]:
    if name not in available_profiles():
        raise InputError(f"unknown profile {name!r}", field="--profile",
                         fix=f"one of: {', '.join(available_profiles())}")
    raw = tomllib.loads((DATA / "profiles" / f"{name}.toml").read_text())
    base = raw.get("base")
    if not base:
        return raw
    merged = _raw(base)
    merged["params"] = {**merged.get("params", {}), **raw.get("params", {})}
    tiers = {k: dict(v) for k, v in merged.get("tiers", {}).items()}
    # a role the overlay lists moves to the overlay's tier: take it out of every base tier first
    moved = {r for v in raw.get("tiers", {}).values() for r in v.get("roles", [])}
    for values in tiers.values():
        values["roles"] = [r for r in values.get("roles", []) if r not in moved]
    for tier, values in raw.get("tiers", {}).items():
        target = tiers.setdefault(tier, {})
        target.update({k: v for k, v in values.items() if k != "roles"})
        target["roles"] = target.get("roles", []) + values.get("roles", [])
    merged["role_policy"] = {**merged.get("role_policy", {}), **raw.get("role_policy", {})}
    merged["tiers"] = tiers
    merged.update({k: raw[k] for k in ("name", "description")})
    return merged


def load_profile(name: str | None, config: Config | None = None) -> Profile:
    config = config or Config()
    if config.profile is not None and config.profile not in available_profiles():
        raise InputError(f"unknown profile {config.profile!r}", path=config.source, field="profile",
                         fix=f"one of: {', '.join(available_profiles())}")
    raw = _raw(name or config.profile or "pimtrail")
    params = dict(raw.get("params", {}))
    for key, value in config.params.items():
        if key not in params:
            raise InputError("unknown parameter", path=config.source, field=f"params.{key}",
                             fix=f"known parameters: {', '.join(sorted(params))}")
        params[key] = value
    catalogue = role_catalogue()
    tiers, role_tiers = {}, {}
    for tier_name, values in raw.get("tiers", {}).items():
        tier = int(tier_name)
        overrides = config.tier_policy.get(tier_name)
        rule = {k: values.get(k) for k in RULE_KEYS}
        if overrides:
            rule.update({k: v for k, v in overrides.model_dump().items() if v is not None})
        tiers[tier] = TierRule(tier, **rule)
        for role_name in values.get("roles", []):
            role_tiers[role_name.lower()] = tier
            if role_name in catalogue:
                role_tiers[catalogue[role_name]] = tier
    for role, tier in config.tiers.items():  # the user's classification wins
        role_tiers[role.lower() if role not in catalogue.values() else role] = tier
        if role in catalogue:
            role_tiers[catalogue[role]] = tier
    role_rules: dict[str, dict[str, Any]] = {}
    for role_name, values in raw.get("role_policy", {}).items():
        unknown = set(values) - set(RULE_KEYS)
        if unknown:
            raise InputError(f"unknown keys {sorted(unknown)} in role_policy.{role_name} of profile {raw['name']}")
        role_rules[role_name.lower()] = values
        if role_name in catalogue:
            role_rules[catalogue[role_name]] = values
    return Profile(raw["name"], raw.get("description", ""), params, tiers, role_tiers, role_rules)
