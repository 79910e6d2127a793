"""Tenant sizes (presets), the built-in roles the tenant uses, and small deterministic helpers.

Every value the generator writes comes from the seed through `Ids` (hashes, never a clock or the
global random state), so the same seed and settings give the same bytes on every run.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache

GRAPH = "https://graph.microsoft.com"


@dataclass(frozen=True)
class Preset:
    """How big the tenant is. `privileged` principals hold roles directly: users, role-assignable
    groups (`role_groups` of the `groups`) and service principals."""

    name: str
    users: int
    privileged: int
    eligible: int  # eligible directory role assignments
    active: int  # active (assigned) directory role assignments, activations come on top
    groups: int  # role-assignable groups
    role_groups: int  # of them, groups that hold a directory role
    service_principals: int  # privileged service principals (they hold active roles)
    members_per_group: int  # average plain members of a role-assignable group
    audit_per_day: int  # directory audit events a day
    audit_days: int  # the audit window every export holds
    page_size: int  # entries per page of the paged datasets (users, audits, registrations...)
    guests: float = 0.04  # share of guest users

    @property
    def privileged_users(self) -> int:
        return self.privileged - self.role_groups - self.service_principals

    def scaled(self, factor: float, name: str | None = None) -> "Preset":
        """The same tenant shape, `factor` times the size (counts at least 1 where it matters)."""
        counts = {f.name: max(1, round(getattr(self, f.name) * factor)) for f in fields(self)
                  if f.name in ("users", "privileged", "eligible", "active", "groups", "role_groups",
                                "service_principals", "audit_per_day")}
        counts["privileged"] = max(counts["privileged"], counts["role_groups"] + counts["service_principals"] + 12)
        return replace(self, name=name or f"{self.name}x{factor:g}", **counts)


PRESETS: dict[str, Preset] = {
    "small": Preset("small", users=500, privileged=60, eligible=200, active=30, groups=12, role_groups=6,
                    service_principals=4, members_per_group=4, audit_per_day=60, audit_days=30, page_size=100),
    "large": Preset("large", users=100_000, privileged=5_000, eligible=20_000, active=2_000, groups=500,
                    role_groups=300, service_principals=200, members_per_group=10, audit_per_day=2_000,
                    audit_days=90, page_size=999),
}


# Built-in roles by display name (template ids from controls/data/roles.toml), with the weight that
# decides how often the role is handed out: many readers and helpdesk admins, few Global Administrators.
ROLE_WEIGHTS: dict[str, float] = {
    "Global Administrator": 0.15, "Privileged Role Administrator": 0.4, "Privileged Authentication Administrator": 0.4,
    "Conditional Access Administrator": 0.8, "Security Administrator": 2, "Authentication Policy Administrator": 0.5,
    "Application Administrator": 3, "Cloud Application Administrator": 3, "User Administrator": 4,
    "Hybrid Identity Administrator": 0.5,
    "Exchange Administrator": 5, "SharePoint Administrator": 5, "Teams Administrator": 5, "Billing Administrator": 2,
    "Intune Administrator": 5, "Authentication Administrator": 4, "Helpdesk Administrator": 8,
    "Password Administrator": 4, "Groups Administrator": 5, "Compliance Administrator": 3,
    "Power Platform Administrator": 2, "Dynamics 365 Administrator": 2, "Security Operator": 3,
    "Directory Writers": 1,
    "Global Reader": 8, "Security Reader": 6, "Reports Reader": 6, "Message Center Reader": 4, "Directory Readers": 3,
}
TIER0 = ("Global Administrator", "Privileged Role Administrator", "Privileged Authentication Administrator",
         "Conditional Access Administrator", "Security Administrator", "Authentication Policy Administrator",
         "Application Administrator", "Cloud Application Administrator", "User Administrator",
         "Hybrid Identity Administrator")
TIER2 = ("Global Reader", "Security Reader", "Reports Reader", "Message Center Reader", "Directory Readers")
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


@dataclass(frozen=True)
class Role:
    index: int
    name: str
    id: str
    tier: int
    weight: float


def builtin_roles() -> list[Role]:
    from pimtrail.controls.profiles import role_catalogue

    ids = role_catalogue()
    missing = set(ROLE_WEIGHTS) - set(ids)
    if missing:
        raise ValueError(f"roles unknown to controls/data/roles.toml: {sorted(missing)}")
    return [Role(n, name, ids[name], 0 if name in TIER0 else 2 if name in TIER2 else 1, weight)
            for n, (name, weight) in enumerate(ROLE_WEIGHTS.items())]


FIRST = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kofi", "Lena",
         "Mateo", "Nora", "Oskar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wei", "Ximena",
         "Yusuf", "Zoe", "Amara", "Bruno", "Carmen", "Dmitri", "Emeka", "Freya")
LAST = ("Adams", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova", "Jensen",
        "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quint", "Rossi", "Schmidt", "Tanaka",
        "Urban", "Varga", "Weber", "Xu", "Yilmaz", "Zielinski", "Andersen", "Brandt", "Chen", "Novak")

UTC = timezone.utc
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # times are kept as whole minutes since this moment


def iso_min(minutes: int | None) -> str | None:
    """Minutes since EPOCH -> Graph's `2026-07-14T01:27:00Z`."""
    if minutes is None or minutes < 0:
        return None
    return _day_text(minutes // 1440) + f"T{minutes % 1440 // 60:02d}:{minutes % 60:02d}:00Z"


@lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    return (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


def minutes(at: datetime) -> int:
    return int((at - EPOCH).total_seconds() // 60)


class Ids:
    """GUIDs, tokens and pseudo-random numbers derived from the seed and a readable path."""

    def __init__(self, seed: int) -> None:
        self.prefix = f"pimtrail-synthetic/{seed}/".encode()

    def _digest(self, parts: tuple[object, ...]) -> bytes:
        return hashlib.md5(self.prefix + "/".join(map(str, parts)).encode(), usedforsecurity=False).digest()

    def guid(self, *parts: object) -> str:
        h = self._digest(parts).hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"

    @staticmethod
    def drawn(rng: "random.Random") -> str:
        """A GUID drawn from `rng` (cheaper than hashing, for the many ids of the audit log)."""
        h = f"{rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"

    def token(self, *parts: object, length: int = 43) -> str:
        digest = hashlib.sha256(self.prefix + "/".join(map(str, parts)).encode()).digest()
        digest += hashlib.sha256(digest).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:length]

    def number(self, *parts: object) -> int:
        """A pseudo-random 64-bit number for `parts`."""
        return int.from_bytes(self._digest(parts)[:8], "little")

    def chance(self, *parts: object) -> float:
        """A pseudo-random number in [0, 1) for `parts`."""
        return self.number(*parts) / 2 ** 64


def role_assignment_id(role_id: str, principal_id: str) -> str:
    """The id Entra gives a directory role assignment: base64url(role + principal) + '-1'."""
    import uuid

    raw = uuid.UUID(role_id).bytes_le + uuid.UUID(principal_id).bytes_le
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "-1"


def context_url(path: str, api: str = "v1.0") -> str:
    return f"{GRAPH}/{api}/$metadata#{path}"
