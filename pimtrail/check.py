"""The `check` use case: build the view for a snapshot, evaluate, store the results."""

from __future__ import annotations

from datetime import datetime

from pimtrail.config import Config
from pimtrail.controls.engine import CheckReport, evaluate
from pimtrail.controls.profiles import load_profile
from pimtrail.controls.view import build_view, paused_gc
from pimtrail.store import HistoryStore
from pimtrail.store.hashing import canonical, sha256_hex


def settings_hash(profile, config: Config) -> str:
    return sha256_hex(canonical({"profile": profile.as_dict(),
                                 "config": config.model_dump(mode="json", exclude={"source"})}))


def run_check(store: HistoryStore, config: Config, *, tenant: str | None = None, snapshot: str | None = None,
              profile: str | None = None, period_from: datetime | None = None,
              period_to: datetime | None = None, save: bool = True) -> CheckReport:
    tenant_id = store.tenant(tenant or config.tenant)
    snap = store.snapshot(tenant_id, snapshot)
    chosen = load_profile(profile, config)
    view = build_view(store, tenant_id, snap, chosen, config, period_from, period_to)
    with paused_gc():  # tens of thousands of findings, no cycles
        report = evaluate(view)
    if save:
        store.save_check_run(tenant_id, snap.id, chosen.name, (view.period_start, view.period_end),
                             settings_hash(chosen, config), [r.as_dict() for r in report.results])
    return report
