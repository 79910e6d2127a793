"""What a collector hands to the history: one snapshot's coverage, raw pages, facts and events.

Collectors build a `CollectedSnapshot`; `HistoryStore.ingest` writes it in one transaction.
Fact and event `data` hold JSON-native values only (str, int, bool, None, lists, dicts), so that
their digests can be recomputed from what the database returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

OK, ERROR, MISSING = "ok", "error", "missing"
COMPLETE, PARTIAL = "complete", "partial"


@dataclass(frozen=True)
class Page:
    """One Graph response body as received: the raw receipt.

    `text` is the body exactly as received; `items`, when known, are the (start, end) offsets of
    each element of its `value` array in `text`, so that the store can keep unchanged elements
    once (`pimtrail.store.receipts`); `volatile` names top-level keys of those elements whose
    values change on every collection without anything else changing (a report's refresh time)."""

    dataset: str
    index: int  # position within the dataset, from 0
    parent: str  # parent object id for per-parent datasets, "" otherwise
    request: str
    text: str
    items: tuple[tuple[int, int], ...] | None = None
    volatile: tuple[str, ...] = ()

    @property
    def payload(self) -> bytes:
        return self.text.encode()


@dataclass
class DatasetCoverage:
    dataset: str
    status: str  # ok / error / missing
    optional: bool
    rows: int = 0
    pages: int = 0
    requests: int = 0
    query: str = ""
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    window_from: datetime | None = None
    window_to: datetime | None = None


@dataclass(frozen=True)
class FactRecord:
    kind: str
    key: str
    data: dict[str, Any]
    principal_id: str | None = None
    role_id: str | None = None
    group_id: str | None = None


@dataclass(frozen=True)
class EventRecord:
    kind: str
    source_id: str
    occurred_at: datetime
    data: dict[str, Any]
    principal_id: str | None = None
    role_id: str | None = None
    correlation_id: str | None = None


@dataclass
class CollectedSnapshot:
    tenant_id: str
    collected_at: datetime
    source: str  # graph / export / sample
    source_ref: str
    coverage: list[DatasetCoverage] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    facts: list[FactRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    # kinds of fact whose source was not (fully) collected: absent facts of these kinds stay as last seen
    unobserved: set[str] = field(default_factory=set)

    @property
    def status(self) -> str:
        incomplete = [c for c in self.coverage if c.status != OK and not c.optional]
        return PARTIAL if incomplete else COMPLETE

    @property
    def gaps(self) -> list[DatasetCoverage]:
        return [c for c in self.coverage if c.status != OK and not c.optional]
