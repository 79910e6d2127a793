"""Timestamps: Graph speaks ISO 8601; the history stores naive UTC datetimes."""

from __future__ import annotations

import re
from datetime import datetime, timezone

# the form pimtrail writes (`iso`), read without the zone conversion (a third of a check's evaluation
# parsed 60,000 of them): the same datetime the general path makes of it, the same ValueError when it is
# no moment (month 13, hour 24)
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def is_canonical(value: str) -> bool:
    """Whether `value` is in the form `iso` writes (`2026-07-14T01:27:00Z`), moment or not."""
    return len(value) == 20 and _CANONICAL.fullmatch(value) is not None


def parse_canonical(value: str) -> datetime:
    """`parse_iso` of a text `is_canonical` holds, without matching it again. Raises ValueError (no moment)."""
    return datetime.fromisoformat(value[:19])


def parse_iso(value: str) -> datetime:
    """Parse an ISO-8601 timestamp with a zone (Graph's `2026-07-14T01:27:00Z`, or with
    7-digit fractions) into a naive UTC datetime. Raises ValueError, also for one out of range in UTC."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a timestamp: {value!r}")
    if is_canonical(value):
        return parse_canonical(value)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:  # Graph sends up to 7 fractional digits; Python takes 6
        head, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{digits[:6]}{rest}" if digits else head + rest
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp has no time zone: {value!r}")
    try:
        return parsed.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:  # real in its zone, before year 1 or past 9999 in UTC (9999-12-31T23:59:59-01:00)
        raise ValueError(f"timestamp out of range in UTC: {value!r}") from None


def iso(value: datetime | None) -> str | None:
    """Naive-UTC datetime -> `2026-07-14T01:27:00Z`."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
