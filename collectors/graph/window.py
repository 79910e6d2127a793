"""The audit window a collection asks Graph for: since the previous collection, or all Entra keeps.

A daily collector needs only the audit events that arrived since its previous collection. When
the history (`--db`) holds a snapshot of the tenant whose `directory_audits` coverage is ok, the
collection asks for `activityDateTime ge <that window's end - AUDIT_OVERLAP>` (Graph supports
`ge`/`le` on activityDateTime); the overlap takes in events Entra logged late, and the store keeps
each event once however many windows bring it. Without such a snapshot, or when it ended longer
ago than Entra keeps audit events, or with `--full-audit`, it asks for the whole retention
window as before. The window asked for is recorded in the export manifest
(`datasets.directory_audits.window`) and from there in the snapshot's coverage.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from pimtrail.collectors.datasets import AUDIT_DATASET, AUDIT_RETENTION_DAYS, Dataset
from pimtrail.timeutil import iso

AUDIT_OVERLAP = timedelta(hours=1)  # asked for again: events Entra logs after their activityDateTime


def audit_since(previous_to: datetime | None, collected_at: datetime) -> datetime | None:
    """Where this collection's audit window starts, given where the previous one ended (None:
    no usable previous window, so the full window)."""
    if previous_to is None:
        return None
    since = min(previous_to, collected_at) - AUDIT_OVERLAP
    if since <= full_window_from(collected_at):
        return None  # a gap longer than Entra keeps: read all it has
    return since


def full_window_from(collected_at: datetime) -> datetime:
    return collected_at - timedelta(days=AUDIT_RETENTION_DAYS)


def incremental(dataset: Dataset, since: datetime) -> Dataset:
    """The audit dataset asking only for events at or after `since`: its own filter (the
    categories), `and activityDateTime ge <since>`."""
    query = dataset.query
    prefix = "$filter="
    parts = query.split("&")
    for n, part in enumerate(parts):
        if part.startswith(prefix):
            parts[n] = f"{prefix}({part[len(prefix):]}) and activityDateTime ge {iso(since)}"
            break
    else:
        parts.append(f"{prefix}activityDateTime ge {iso(since)}")
    return replace(dataset, query="&".join(p for p in parts if p))


def previous_audit_windows(db: str | None) -> dict[str, datetime]:
    """Per tenant in the history `db`: the end of the newest ok directory_audits window. An
    absent or unreadable history gives none (the collection then reads the full window, and
    the ingest says what is wrong with the history); a missing SQLite file is not created."""
    from pimtrail.errors import HistoryError
    from pimtrail.store import HistoryStore
    from pimtrail.store.engine import resolve_url, sqlite_path

    path = sqlite_path(resolve_url(db))
    if path is not None and not path.exists():
        return {}
    try:
        store = HistoryStore.open(db)
    except HistoryError:
        return {}
    windows: dict[str, datetime] = {}
    with store:
        newest_first = sorted(store.snapshots(), key=lambda s: (s.tenant_id, -s.seq))
        for snap in newest_first:
            if snap.tenant_id in windows:
                continue
            for cov in store.coverage(snap.id):
                if cov["dataset"] == AUDIT_DATASET and cov["status"] == "ok" and cov.get("window_to"):
                    windows[snap.tenant_id] = cov["window_to"]
    return windows
