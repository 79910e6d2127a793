"""The history store: snapshots, raw receipts, versioned facts, events (DESIGN.md §3).

`HistoryStore` and `SnapshotInfo` are loaded on first use: the store's modules of pure computation (hashing,
the events' rows in a worker process) are imported without SQLAlchemy and the schema (~0.4 s)."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pimtrail.store.history import HistoryStore, SnapshotInfo

__all__ = ["HistoryStore", "SnapshotInfo"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pimtrail.store import history

        return getattr(history, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
