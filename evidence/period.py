"""Reporting periods (`2026-Q3`, `2026-08`, `--from/--to`) and the snapshots that bound them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pimtrail.errors import InputError
from pimtrail.store import HistoryStore, SnapshotInfo


@dataclass(frozen=True)
class Period:
    label: str
    start: datetime  # inclusive, naive UTC
    end: datetime  # exclusive

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()


def parse_period(period: str | None, start: str | None = None, end: str | None = None) -> Period:
    try:
        return _parsed(period, start, end)
    except (ValueError, OverflowError) as exc:  # a year the calendar cannot end (9999-Q4), or year 0
        raise InputError(f"{period or f'{start} to {end}'} is outside the calendar ({exc})",
                         field="--period" if period else "--from/--to", fix="give a period of a real year") from None


def _parsed(period: str | None, start: str | None, end: str | None) -> Period:
    if period:
        quarter = re.fullmatch(r"(\d{4})-Q([1-4])", period)
        month = re.fullmatch(r"(\d{4})-(\d{2})", period)
        year = re.fullmatch(r"(\d{4})", period)
        if quarter:
            y, q = int(quarter[1]), int(quarter[2])
            first = datetime(y, 3 * q - 2, 1)
            last = datetime(y + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
            return Period(period, first, last)
        if month and 1 <= int(month[2]) <= 12:
            y, m = int(month[1]), int(month[2])
            return Period(period, datetime(y, m, 1), datetime(y + (m == 12), 1 if m == 12 else m + 1, 1))
        if year:
            y = int(year[1])
            return Period(period, datetime(y, 1, 1), datetime(y + 1, 1, 1))
        raise InputError(f"not a period: {period!r}", field="--period", fix="use 2026-Q3, 2026-08 or 2026")
    if not (start and end):
        raise InputError("no period given", field="--period", fix="pass --period 2026-Q3, or --from and --to")
    try:
        first = datetime.fromisoformat(start)
        last = datetime.fromisoformat(end)
    except ValueError:
        raise InputError(f"not a date: {start!r} / {end!r}", field="--from/--to", fix="use YYYY-MM-DD") from None
    if last < first:
        raise InputError("--to is before --from", field="--to")
    return Period(f"{first:%Y-%m-%d}_{last:%Y-%m-%d}", first, last + timedelta(days=1))


@dataclass
class PeriodSnapshots:
    opening: SnapshotInfo  # state at the period start (or the first snapshot inside it)
    closing: SnapshotInfo  # state at the period end
    inside: list[SnapshotInfo]  # every snapshot from opening to closing, in order
    opening_is_late: bool  # the history begins after the period start


def period_snapshots(store: HistoryStore, tenant: str, period: Period) -> PeriodSnapshots:
    snaps = store.snapshots(tenant)
    before = [s for s in snaps if s.collected_at <= period.start]
    within = [s for s in snaps if period.start < s.collected_at < period.end]
    if not within and not before:
        raise InputError(f"the history holds no snapshot of tenant {tenant} up to {period.last_day}",
                         field="--period", fix="collect first, or choose a period the history covers")
    opening = before[-1] if before else within[0]
    closing = within[-1] if within else before[-1]
    inside = [opening] + [s for s in within if s.seq > opening.seq]
    return PeriodSnapshots(opening, closing, inside, not before)
