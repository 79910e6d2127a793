"""What a collector hands to the history: one snapshot's coverage, raw pages, facts and events.

Collectors build a `CollectedSnapshot`; `HistoryStore.ingest` writes it in one transaction.
Fact and event `data` hold JSON-native values only (str, int, bool, None, lists, dicts), so that
their digests can be recomputed from what the database returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

OK, ERROR, MISSING = "ok", "error", "missing"
COMPLETE, PARTIAL = "complete", "partial"


class _Text:
    """`Page.text`, for a page read from an ASCII file with its bytes (`data`) and no text (None): made of them when
    first read, and kept. Not made for the receipts (`Page.decoded`): a large tenant's export is 368 MB, and its
    pages' texts, cut out of the files' as they were read, were made only to be hashed and stored from their bytes
    (docs/architecture.md, "Pages' bytes for their receipts")."""

    def __get__(self, page: "Page | None", owner: type | None = None) -> str:
        if page is None:
            raise AttributeError("text")  # no default (dataclasses asks the class)
        text = page.__dict__["_text"]
        if text is None:
            text = page.__dict__["_text"] = str(page.data, "ascii")
        return text

    def __set__(self, page: "Page", value: str | None) -> None:
        page.__dict__["_text"] = value


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
    text: str = _Text()  # type: ignore[assignment]  # None: made of `data` when first read
    items: tuple[tuple[int, int], ...] | None = None
    volatile: tuple[str, ...] = ()
    # elements not parsed: their text is that of an element the previous snapshot held
    # (`CollectedSnapshot.based_on`), so their facts are the open facts naming that element. By index:
    # (its digest, the value of its volatile key as it stands in `text`, None without one)
    skipped: dict[int, tuple[bytes, str | None]] = field(default_factory=dict)
    # the body's UTF-8 bytes where the reader has them at hand (a view of the file's bytes, which stay in memory with
    # the page) and they are its characters one for one (ASCII): the receipts hash the body and store its elements
    # from them, without encoding the text again. None: the text is encoded where bytes are needed
    data: Any = field(default=None, compare=False, repr=False)

    @property
    def utf8(self) -> bytes | memoryview:
        """The body's UTF-8: its bytes (`data`, a view of the file's) when it has them, else its text encoded."""
        return self.text.encode() if self.data is None else self.data

    @property
    def payload(self) -> bytes:
        return bytes(self.utf8)

    @property
    def size(self) -> int:
        """len(text), without making it."""
        return len(self.data) if self.__dict__["_text"] is None else len(self.text)

    def __post_init__(self) -> None:
        if self.__dict__["_text"] is None and self.data is None:
            raise TypeError("a page given no text needs its bytes (data)")

    def decoded(self) -> str:
        """The text, made of the bytes for the caller only when the page was given none (`text`)."""
        text = self.__dict__["_text"]
        return str(self.data, "ascii") if text is None else text


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


class FactRecord:
    """A versioned fact. Its `data` may be given as a `build` function, run on first use: facts
    normalised from one raw element each (users, registration rows) are built only when the store
    finds the element changed since the previous snapshot (most of 100,000 users are not).
    `kind`, `key` and the id columns are always given."""

    __slots__ = ("kind", "key", "_data", "principal_id", "role_id", "group_id", "element", "depends", "_build",
                 "fallback", "textual")

    def __init__(self, kind: str, key: str, data: dict[str, Any] | None = None, principal_id: str | None = None,
                 role_id: str | None = None, group_id: str | None = None,
                 element: tuple[str, int, int] | None = None, *, depends: tuple[str, ...] = (),
                 build: Callable[[], dict[str, Any]] | None = None, fallback: bool = False,
                 textual: bool = False):
        self.kind, self.key, self._data = kind, key, data
        self.principal_id, self.role_id, self.group_id = principal_id, role_id, group_id
        # (dataset, page, index) of the one raw element this fact is normalised from, with its page's
        # parent id and the datasets in `depends` (e.g. role names from role_definitions): when the
        # previous snapshot held the same element text under the same parent and those datasets
        # page for page, the fact is known to be unchanged
        self.element, self.depends = element, depends
        self._build = build
        # only when no other record of its kind and key is in the snapshot: a role holder as `$expand`
        # gave it, for holders the users dataset did not give (nor a user read unparsed, `Page.skipped`)
        self.fallback = fallback
        # its data holds no number, only texts, true/false, nulls and lists and objects of them (built from an
        # element decoded typed, `collectors.normalize.typed`): encoded without looking for floats (`hashing.encode`)
        self.textual = textual

    @property
    def data(self) -> dict[str, Any]:
        if self._build is not None:
            self._data, self._build = self._build(), None
        return self._data  # type: ignore[return-value]

    def _key(self) -> tuple:
        return (self.kind, self.key, self.data, self.principal_id, self.role_id, self.group_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FactRecord) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.kind, self.key))

    def __repr__(self) -> str:
        return f"FactRecord({self.kind!r}, {self.key!r}, {self.data!r})"


class EventRecord:
    """An append-only event. Its `data` and id columns may be given as a `build` function, run on
    first use: an audit window overlaps the previous collection's, and the store normalises only the
    events it does not hold yet (most of a 90-day window is known). `kind`, `source_id` and
    `occurred_at` are always given, checked when the export is read."""

    __slots__ = ("kind", "source_id", "occurred_at", "_data", "_principal_id", "_role_id",
                 "_correlation_id", "_build", "textual")

    def __init__(self, kind: str, source_id: str, occurred_at: datetime, data: dict[str, Any] | None = None,
                 principal_id: str | None = None, role_id: str | None = None,
                 correlation_id: str | None = None, *,
                 build: Callable[[], tuple[dict[str, Any], str | None, str | None, str | None]] | None = None,
                 textual: bool = False):
        self.kind, self.source_id, self.occurred_at = kind, source_id, occurred_at
        self._data, self._principal_id, self._role_id, self._correlation_id = data, principal_id, role_id, correlation_id
        self._build = build
        self.textual = textual  # as `FactRecord.textual`

    def _built(self) -> "EventRecord":
        if self._build is not None:
            self._data, self._principal_id, self._role_id, self._correlation_id = self._build()
            self._build = None
        return self

    @property
    def data(self) -> dict[str, Any]:
        return self._built()._data  # type: ignore[return-value]

    @property
    def principal_id(self) -> str | None:
        return self._built()._principal_id

    @property
    def role_id(self) -> str | None:
        return self._built()._role_id

    @property
    def correlation_id(self) -> str | None:
        return self._built()._correlation_id

    def columns(self) -> tuple[dict[str, Any], str | None, str | None, str | None]:
        """(data, principal_id, role_id, correlation_id), built once: for a loop over many records (one call
        each instead of four)."""
        if self._build is not None:
            self._built()
        return self._data, self._principal_id, self._role_id, self._correlation_id  # type: ignore[return-value]

    def _key(self) -> tuple:
        return (self.kind, self.source_id, self.occurred_at, self.data, self.principal_id, self.role_id,
                self.correlation_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EventRecord) and self._key() == other._key()

    def __repr__(self) -> str:
        return f"EventRecord({self.kind!r}, {self.source_id!r}, {self.occurred_at!r})"


class _Skipped:
    """Stands in a body's `value` for an element recognised without being parsed (`collectors.unparsed`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED = _Skipped()


@dataclass
class Known:
    """What the history holds of a tenant's newest snapshot (`HistoryStore.known`), so that the next
    export is read without parsing the elements that snapshot already held (`collectors.unparsed`)."""

    snapshot_id: int
    # per dataset: its elements in the snapshot's order, as three lists: digests (16 bytes, of the text
    # as stored, volatile values cut out), lengths (characters of that text) and element numbers
    elements: dict[str, tuple[list[bytes], list[int], list[int]]]


@dataclass(frozen=True)
class Remake:
    """How the first `count` of a snapshot's events are made again from its pages of `dataset`: `fn(source)`
    gives (the sha256 of those pages' texts, where their elements lie (`hashing.cuts_digest`), the events, in
    order, as the snapshot holds them, and a function making each page's elements' digests for the receipts),
    `source` being the dataset's file in the export or the pages as (parent, request, text) (`read_export` sets it,
    `collectors.exportdir.audit_pages`; for a file, `fn(source, cut)` also gives `cut` where its pages and elements
    lie, as soon as it is read). A tenant's first snapshot has them
    made in a worker process, which is sent only that (`pimtrail.store.appending`); `count` is 0 while they are
    deferred to it (`CollectedSnapshot.deferred`)."""

    dataset: str
    count: int
    fn: Callable[..., tuple[list[str], str, list["EventRecord"], Callable[[], list[bytes | None]]]]


class _Pages:
    """`CollectedSnapshot.pages`: a list, completed first when the reader left a dataset's pages to come
    (`CollectedSnapshot.pend`: a tenant's first audit log, cut by the worker that parses it, whose cut the reader
    takes when a page is first asked for). A completion that raises stays pending: the pages are never read without
    it."""

    def __get__(self, snap: "CollectedSnapshot | None", owner: type | None = None) -> list[Page]:
        if snap is None:
            return ()  # type: ignore[return-value]  # the default the dataclass asks the class for (set as a list)
        pages, pending = snap.__dict__["_pages"], snap.__dict__.get("_pending")
        if pending is not None:
            pending(pages)
            snap.__dict__["_pending"] = None
        return pages

    def __set__(self, snap: "CollectedSnapshot", value: list[Page]) -> None:
        snap.__dict__["_pages"] = value if type(value) is list else list(value)


@dataclass
class CollectedSnapshot:
    tenant_id: str
    collected_at: datetime
    source: str  # graph / export / sample
    source_ref: str
    coverage: list[DatasetCoverage] = field(default_factory=list)
    pages: list[Page] = _Pages()  # type: ignore[assignment]
    facts: list[FactRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    # kinds of fact whose source was not (fully) collected: absent facts of these kinds stay as last seen
    unobserved: set[str] = field(default_factory=set)
    # the snapshot (id) whose elements were recognised unparsed (`Page.skipped`); the store refuses
    # the snapshot (`StaleKnowledge`) if that is not the tenant's newest when it is written
    based_on: int | None = None
    remake: Remake | None = None
    # its first `remake.count` events being made ready by a worker started when the export's reading began
    # (`pimtrail.store.appending.FirstEvents`), which the ingest of a tenant's first snapshot takes on
    first_events: Any = None
    # set when that worker reads the audit log for this process too: its pages were cut into elements where the
    # export's writer ends them, not parsed (`collectors.unparsed.LineCut`), or left to come, made of the worker's cut
    # when first asked for (`pend`, `collectors.auditcut`); none of its events is in `events` (`remake.count` is 0)
    # unless `undefer` read them here
    deferred: Callable[["CollectedSnapshot"], bool] | None = None
    # its pages cut for the receipts (`pimtrail.store.receipts.cut_pages`) before the ingest, by
    # `check_before_creating` while the worker reads the audit log; the ingest takes them if they are of its pages
    cuts: Any = None
    # the file each dataset was read from (`collectors.exportdir.read_export`), for errors found after the reading
    # (`pimtrail.store.located`)
    files: dict[str, str] = field(default_factory=dict)
    # the export directory it was read from (`read_export`), read again in full where the history refuses a read
    # against its newest snapshot (`collect._ingest`); `source_ref` names it otherwise for a live collection
    root: Path | None = None

    def pend(self, complete: Callable[[list[Page]], None]) -> None:
        """Pages still to come: `complete(pages)` puts them in their place in the list when `pages` is first read."""
        self.__dict__["_pending"] = complete

    def undefer(self) -> bool:
        """Read the deferred audit log's pages here: their events first in `events`, their elements cut as a full
        parse cuts them. Whether they were cut so already (nothing deferred: True). Raises `InputError` as the
        full read would have."""
        if self.deferred is None:
            return True
        same = self.deferred(self)  # changes nothing when it raises
        self.deferred, self.cuts = None, None  # its audit pages are new ones
        return same

    @property
    def status(self) -> str:
        incomplete = [c for c in self.coverage if c.status != OK and not c.optional]
        return PARTIAL if incomplete else COMPLETE

    @property
    def gaps(self) -> list[DatasetCoverage]:
        return [c for c in self.coverage if c.status != OK and not c.optional]
