"""`pimtrail demo`: the whole pipeline on the sample tenant — history, checks, pack, dashboard."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from pimtrail.activations import join_activations
from pimtrail.config import Config, parse_config
from pimtrail.store import HistoryStore

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PERIOD = "2026-Q3"


def sample_config_text() -> str:
    return (resources.files("pimtrail.sample_data") / "pimtrail.toml").read_text()


def sample_config() -> Config:
    return parse_config(tomllib.loads(sample_config_text()), "sample_data/pimtrail.toml")


def history_lines(store: HistoryStore) -> dict[str, Any]:
    tenant = store.tenant(None)
    snaps = store.snapshots(tenant)
    first, last = snaps[0], snaps[-1]
    org = store.facts(tenant, "tenant", last.seq)
    lines = []
    for label, snap in (("start", first), ("end", last)):
        active = store.facts(tenant, "role_assignment", snap.seq)
        eligible = store.facts(tenant, "role_eligibility", snap.seq)
        standing = [a for a in active if a["permanent"]]
        outside = [a for a in active if a.get("outside_pim")]
        ga = {a["principal_id"] for a in active + eligible if a["role_id"] == GLOBAL_ADMIN}
        lines.append(f"{label} ({snap.collected_at:%Y-%m-%d}): {len(active)} active role assignments "
                     f"({len(standing)} permanent, {len(outside)} outside PIM), {len(eligible)} eligible, "
                     f"{len(ga)} Global Administrator holders")
    audits = store.events(tenant, "audit", first.collected_at - timedelta(days=31), None)
    activations = join_activations(audits)
    lines.append(f"audit events stored: {len(audits)}; PIM activations joined: {len(activations)} "
                 f"({sum(a.outcome == 'denied' for a in activations)} denied, "
                 f"{sum(a.self_approved for a in activations)} self-approved)")
    return {"tenant_id": tenant, "tenant_name": org[0]["name"] if org else "?", "snapshots": len(snaps),
            "lines": lines}


def sample_checks(store: HistoryStore, config: Config) -> list[tuple[str, Any]]:
    """The sample tenant checked at the start and at the end of its quarter (results stored)."""
    from pimtrail.check import run_check

    return [(label, run_check(store, config, snapshot=which)) for label, which in (("start", "1"), ("end", "latest"))]


def run_demo(out: Path, say: Callable[[str], None], progress: Callable | None = None) -> bool:
    """Build everything into `out`; returns whether the hash chain verified."""
    from pimtrail import collect as service
    from pimtrail.controls.profiles import load_profile
    from pimtrail.evidence.dashboard import write_dashboard
    from pimtrail.evidence.pack import write_pack
    from pimtrail.evidence.period import parse_period
    from pimtrail.evidence.series import build_series

    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "pimtrail.db"
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)
    config = sample_config()
    (out / "pimtrail.toml").write_text(sample_config_text())
    say("Building the sample tenant's quarter (2026-07-01 .. 2026-09-30) ...")
    snaps = service.sample_snapshots()
    with HistoryStore.open(str(db_path), create=True) as store:
        service.ingest_all(store, snaps, progress=progress)
        verified = store.verify()
        summary = history_lines(store)
        checks = sample_checks(store, config)
        tenant = store.tenant(None)
        profile = load_profile(None, config)
        say("Writing the 2026-Q3 evidence pack and the trend dashboard ...")
        pack = write_pack(store, tenant, parse_period(PERIOD), profile, config, out / f"pack-{PERIOD}")
        dashboard = write_dashboard(build_series(store, tenant, profile, config), out / "dashboard.html")
    say("")
    say(f"History: {db_path}  ({summary['snapshots']} snapshots of tenant {summary['tenant_name']} "
        f"{summary['tenant_id']})")
    say(f"Hash chain: {'intact' if verified.ok else 'BROKEN'} over {len(verified.checks)} snapshots")
    for line in summary["lines"]:
        say(f"  {line}")
    for label, report in checks:
        counts = report.counts()
        say(f"\nControls at quarter {label} (snapshot #{report.view.snapshot.seq}, profile "
            f"{report.view.profile.name}): " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
        for r in report.results:
            if r.status.value in ("fail", "warn"):
                first = next(f for f in r.findings if f.status.value == r.status.value)
                say(f"  {r.status.value.upper():<5} {r.control.id:<13} {first.message}")
    say(f"\nEvidence pack {PERIOD}: {pack.directory} ({pack.pdf_pages}-page PDF, workbook, JSON, manifest, SHA256SUMS)")
    say(f"Trend dashboard: {dashboard}")
    say(f"\nTry: pimtrail snapshots --db {db_path}    pimtrail verify --db {db_path}\n"
        f"     pimtrail check --db {db_path} --config {out / 'pimtrail.toml'} [--snapshot 1] [--format json|sarif|junit|csv]")
    return verified.ok
