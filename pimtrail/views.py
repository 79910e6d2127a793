"""Small read models for the CLI: the snapshot listing and the permissions table."""

from __future__ import annotations

from typing import Any

from pimtrail.collectors.datasets import DATASETS
from pimtrail.store import HistoryStore
from pimtrail.timeutil import iso


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
    example = {"review_instance": "{id}/{id}", "users": "{id},{id},..."}  # users: `in` 15 ids
    return [{"dataset": d.name, "request": d.request(example.get(d.parent.value, "{id}")).replace("'...'", "..."),
             "permission": ", ".join(d.permissions), "api": d.api, "licence": d.licence,
             "optional": d.optional, "note": d.note} for d in DATASETS]
