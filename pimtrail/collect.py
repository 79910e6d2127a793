"""Collection use cases behind `pimtrail collect` and `pimtrail demo` (the CLI stays thin)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pimtrail.model import CollectedSnapshot
from pimtrail.store import HistoryStore, SnapshotInfo


@dataclass
class Collected:
    snapshot: SnapshotInfo | None  # None when the history already held it
    source_ref: str
    status: str
    gaps: list[str]
    skipped_reason: str | None = None


def read_exports(paths: list[Path], tenant: str | None = None) -> list[CollectedSnapshot]:
    """Read and check every export before anything is written."""
    from pimtrail.collectors.exportdir import read_export

    return [read_export(path, tenant=tenant) for path in paths]


def check_before_creating(db: str | None, snaps: list[CollectedSnapshot]) -> None:
    """Audit entries and per-user facts are normalised when the store asks for them (only those it
    does not hold yet: `EventRecord`, `FactRecord`). A new SQLite history is created only from a fully
    checked export, so here they are all normalised first: a bad entry then fails before any file
    exists. (Into an existing history a bad entry fails inside the ingest transaction and leaves the
    history as it was.)"""
    from pimtrail.store.engine import resolve_url, sqlite_path

    path = sqlite_path(resolve_url(db))
    if path is not None and not path.exists():
        for snap in snaps:
            for record in (*snap.events, *snap.facts):
                record.data  # noqa: B018 -- builds and checks it


def ingest_all(store: HistoryStore, snaps: list[CollectedSnapshot],
               progress: Callable[[Collected], None] | None = None) -> list[Collected]:
    """Ingest in time order; a snapshot whose time is already in the history is skipped, so
    running the same collection twice is harmless."""
    results = []
    existing = {(s.tenant_id, s.collected_at) for s in store.snapshots()}
    for snap in sorted(snaps, key=lambda s: s.collected_at):
        gaps = [c.dataset for c in snap.gaps]
        if (snap.tenant_id, snap.collected_at) in existing:
            outcome = Collected(None, snap.source_ref, snap.status, gaps, "already in the history")
        else:
            outcome = Collected(store.ingest(snap), snap.source_ref, snap.status, gaps)
        results.append(outcome)
        if progress:
            progress(outcome)
    return results


def sample_snapshots(tenant: str | None = None) -> list[CollectedSnapshot]:
    """The sample quarter, built as export directories and read through the offline path."""
    from pimtrail.sample_data import build_exports

    with tempfile.TemporaryDirectory(prefix="pimtrail-sample-") as tmp:
        snaps = read_exports(build_exports(Path(tmp)), tenant=tenant)
    for snap in snaps:  # the temporary folder is gone: name the export by its date instead
        snap.source, snap.source_ref = "sample", f"sample:{snap.collected_at.date().isoformat()}"
    return snaps
