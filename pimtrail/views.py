"""Small read models for the CLI: snapshot listing, permissions, the demo summary."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pimtrail.activations import join_activations
from pimtrail.collectors.datasets import DATASETS
from pimtrail.store import HistoryStore
from pimtrail.timeutil import iso

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def snapshot_listing(store: HistoryStore, tenant: str | None = None) -> list[dict[str, Any]]:
    if tenant:
        store.tenant(tenant)
    out = []
    for s in store.snapshots(tenant):
        coverage = [{
            "dataset": c["dataset"], "status": c["status"], "optional": c["optional"],
            "rows": c["rows"], "pages": c["pages"], "requests": c["requests"], "query": c["query"],
            "http_status": c["http_status"], "error_code": c["error_code"],
            "error_message": c["error_message"],
            "window": ({"from": iso(c["window_from"]), "to": iso(c["window_to"])}
                       if c["window_from"] else None),
        } for c in store.coverage(s.id)]
        out.append({
            "id": s.id, "tenant_id": s.tenant_id, "seq": s.seq, "collected_at": iso(s.collected_at),
            "ingested_at": iso(s.ingested_at), "source": s.source, "source_ref": s.source_ref,
            "tool_version": s.tool_version, "status": s.status, "fact_count": s.fact_count,
            "event_count": s.event_count, "content_hash": s.content_hash, "prev_hash": s.prev_hash,
            "chain_hash": s.chain_hash, "coverage": coverage,
        })
    return out


def permission_rows() -> list[dict[str, Any]]:
    return [{"dataset": d.name, "request": d.request("{id}/{id}" if d.parent.value == "review_instance"
                                                     else "{id}"),
             "permission": d.permission, "api": d.api, "licence": d.licence,
             "optional": d.optional, "note": d.note} for d in DATASETS]


def demo_summary(store: HistoryStore) -> dict[str, Any]:
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
    return {"tenant_id": tenant, "tenant_name": org[0]["name"] if org else "?",
            "snapshots": len(snaps), "lines": lines}


def sample_config_text() -> str:
    from importlib import resources

    return (resources.files("pimtrail.sample_data") / "pimtrail.toml").read_text()


def sample_checks(store: HistoryStore) -> list[tuple[str, Any]]:
    """The sample tenant checked at the start and at the end of its quarter (results stored)."""
    from pimtrail.check import run_check
    from pimtrail.config import parse_config
    import tomllib

    config = parse_config(tomllib.loads(sample_config_text()), "sample_data/pimtrail.toml")
    return [(label, run_check(store, config, snapshot=which)) for label, which in (("start", "1"), ("end", "latest"))]
