"""Stable identifiers and time formatting for the sample tenant.

Every id is derived from the tenant id and a readable seed (uuid5), so the same scenario
always yields the same bytes. Nothing here reads the clock or a random source.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from datetime import datetime, timedelta, timezone

UTC = timezone.utc
GRAPH = "https://graph.microsoft.com"


class Ids:
    """Derives GUIDs and Graph-shaped ids from one namespace (the tenant id)."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self._ns = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:pimtrail-sample:{tenant_id}")

    def guid(self, *parts: object) -> str:
        return str(uuid.uuid5(self._ns, "/".join(str(p) for p in parts)))

    def token(self, *parts: object, length: int = 43) -> str:
        """A base64url token (credential ids, skip tokens)."""
        digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
        digest += hashlib.sha256(digest).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:length]


def role_assignment_id(role_id: str, principal_id: str) -> str:
    """The id Entra gives a directory role assignment: base64url(role + principal) + '-1'."""
    raw = uuid.UUID(role_id).bytes_le + uuid.UUID(principal_id).bytes_le
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "-1"


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z and whole seconds, like Graph: 2026-07-14T01:27:00Z."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def at_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"scenario time without a time zone: {value}")
    return value.astimezone(UTC)


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def duration(text: str) -> timedelta:
    """Parse the ISO 8601 durations PIM uses (P365D, PT8H, PT30M)."""
    match = _DURATION.match(text)
    if not match or text in ("P", "PT"):
        raise ValueError(f"unsupported duration {text!r}")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def context_url(path: str, api: str = "v1.0") -> str:
    return f"{GRAPH}/{api}/$metadata#{path}"
