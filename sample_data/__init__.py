"""The sample tenant: Northwind Aeronautics, one quarter (July-September 2026) of PIM history.

`build_exports(out_dir)` writes one pimtrail export directory per weekly snapshot, built from
the readable scenario in `scenario.toml`. Deterministic: the same bytes on every run.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

from .builder import build

SCENARIO_PATH: Path = Path(__file__).parent / "scenario.toml"


def _header() -> tuple[str, tuple[date, ...]]:
    raw = tomllib.loads(SCENARIO_PATH.read_text(encoding="utf-8"))
    collection = raw["collection"]
    first, last = collection["first"].date(), collection["last"].date()
    step = collection["every_days"]
    dates = tuple(date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1, step))
    return raw["tenant"]["id"], dates


TENANT_ID, SNAPSHOT_DATES = _header()

__all__ = ["TENANT_ID", "SNAPSHOT_DATES", "SCENARIO_PATH", "build_exports"]


def build_exports(out_dir: Path) -> list[Path]:
    """Write the sample exports under `out_dir` (named like 2026-07-01), oldest first."""
    return build(Path(out_dir), SCENARIO_PATH)
