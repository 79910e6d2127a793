"""The history store: snapshots, raw receipts, versioned facts, events (DESIGN.md §3)."""

from pimtrail.store.history import HistoryStore, SnapshotInfo

__all__ = ["HistoryStore", "SnapshotInfo"]
