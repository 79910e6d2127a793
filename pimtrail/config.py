"""`pimtrail.toml`: break-glass accounts, role tiers, parameters, business hours, exceptions.

Validated with pydantic; every error names the key and says how to fix it. Credentials never live
here: they come from the environment / azure-identity.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pimtrail.errors import InputError

ENV_CONFIG = "PIMTRAIL_CONFIG"
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BreakGlass(Strict):
    accounts: list[str] = Field(default_factory=list, description="object ids or UPNs")

    def wanted(self) -> set[str]:
        """The accounts as pimtrail matches them: trimmed, in lower case (Entra ignores letter case in ids and
        UPNs), blanks left out. The one place break-glass accounts are read (collector, controls, sample)."""
        return {a.strip().lower() for a in self.accounts if a.strip()}

    def split(self) -> tuple[set[str], set[str]]:
        """(`wanted` given as object ids, given as UPNs: with an "@")."""
        wanted = self.wanted()
        upns = {a for a in wanted if "@" in a}
        return wanted - upns, upns


def is_break_glass(wanted: set[str], principal_id: str | None, upn: str | None) -> bool:
    """Whether a principal (its id, its UPN) is one of `wanted` (`BreakGlass.wanted`)."""
    return (principal_id or "").lower() in wanted or (upn or "").lower() in wanted


class BusinessHours(Strict):
    start: time = time(8, 0)
    end: time = time(18, 0)
    days: list[str] = Field(default_factory=lambda: DAYS[:5])
    time_zone: str = "UTC"

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        bad = [d for d in value if d not in DAYS]
        if bad:
            raise ValueError(f"unknown day(s) {bad}; use {DAYS}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Europe/Berlin") from None
        return value


class ExceptionEntry(Strict):
    control: str
    subject: str = Field(description="principal id or UPN, role name, or group id")
    reason: str
    approver: str
    expires: date


class TierPolicy(Strict):
    max_activation_hours: float | None = None
    require_mfa: bool | None = None
    require_justification: bool | None = None
    require_ticket: bool | None = None
    require_approval: bool | None = None
    min_approvers: int | None = None


class Config(Strict):
    tenant: str | None = None
    database: str | None = None
    profile: str | None = None
    break_glass: BreakGlass = Field(default_factory=BreakGlass)
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    tiers: dict[str, int] = Field(default_factory=dict, description="role name or id -> tier 0/1/2")
    tier_policy: dict[str, TierPolicy] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    exceptions: list[ExceptionEntry] = Field(default_factory=list)
    source: str | None = Field(default=None, exclude=True)

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if v not in (0, 1, 2)}
        if bad:
            raise ValueError(f"tiers must be 0, 1 or 2: {bad}")
        return value

    @field_validator("tier_policy")
    @classmethod
    def _tier_policy(cls, value: dict[str, TierPolicy]) -> dict[str, TierPolicy]:
        bad = sorted(k for k in value if k not in ("0", "1", "2"))
        if bad:  # a policy for a tier no profile has would be ignored without a word
            raise ValueError(f"tier_policy is per tier 0, 1 or 2, not {', '.join(map(repr, bad))}")
        return value


def load_config(path: str | Path | None) -> Config:
    """`--config`, else $PIMTRAIL_CONFIG, else ./pimtrail.toml if present, else defaults."""
    chosen = path or os.environ.get(ENV_CONFIG)
    if not chosen:
        if not Path("pimtrail.toml").exists():
            return Config()
        chosen = "pimtrail.toml"
    file = Path(chosen)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("config file not found", path=str(file), fix="pass --config FILE or create pimtrail.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", path=str(file)) from None
    return parse_config(raw, str(file))


def parse_config(raw: dict[str, Any], source: str = "pimtrail.toml") -> Config:
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        fix = "remove it or check the spelling" if first["type"] == "extra_forbidden" else "see docs/configuration.md"
        raise InputError(first["msg"], path=source, field=key, fix=fix) from None
    config.source = source
    return config
