"""Raw receipts, stored per element so that a year of daily snapshots stays small.

A receipt is one Graph response body exactly as received; its sha256 is what the chain records.
A page of 999 users changes every day (someone joins, someone signs in), so storing whole pages
content-addressed keeps almost nothing once. Instead a page is cut into:

- its *elements* (the items of `value`), numbered `n` per tenant in the order first seen and kept
  in *packs* of consecutive numbers (`item_pack`: texts compressed together, 16-byte digests;
  `pimtrail.store.packs`): an
  element the previous snapshot also had is found by its digest and not stored again, so an
  unchanged user or audit entry is stored once for the whole history;
- a *layout*: the text before the first and after the last element, the separators when they are
  not plain commas, the element numbers as runs (`[[first_n, count], ...]`, a few runs per page
  since numbers are given in page order) and the values of the dataset's volatile keys (a report's
  refresh time, a user's last sign-in), cut out of the elements and kept run-length encoded here.

A dataset's pages of one snapshot form a *listing* (request, parent, page sha256, layout per page),
stored as a content-addressed blob: an unchanged dataset is one small `receipt_list` row a day.
Pages whose elements are unknown (not a `{"value": [...]}` body as read) keep the old form: the
whole body as one blob, its layout null.

`rebuild` puts a page together again from these parts, byte for byte; `verify` checks the parts
(every element against its digest, every blob against its sha256) and the chain binds each
listing's sha256, so a changed element, layout or listing is found without rebuilding every page.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from pimtrail.model import Page
from pimtrail.store import blobs as _blobs
from pimtrail.store import hashing
from pimtrail.store import packs as _packs
from pimtrail.store.elements import digest, digests_at, restore, strip
from pimtrail.store.driver import _sql, db_time, insert, raw_many, raw_rows  # noqa: F401 -- called as receipts.raw_rows
from pimtrail.store.schema import item_pack_table, receipt_list_table

def _unrle(runs: list[list[Any]]) -> list[Any]:
    return [value for value, count in runs for _ in range(count)]


# -- cutting pages into parts ----------------------------------------------------------------
def _digests_stripped(text: str, view: memoryview, spans: tuple[tuple[int, int], ...], key: str,
                      known: dict[int, tuple[bytes, str | None]]
                      ) -> tuple[list[bytes], list[list[str | None]], list[tuple[int, int] | None]]:
    """`digest(strip(element, (key,)))` and the values cut out, for the elements of an ASCII page
    (`view` its bytes): the parts around a plain string value are hashed in place. Any other
    value is left to `strip` itself, so the result is the same. Elements read unparsed come with
    both (`known`, `Page.skipped`). Also where each value cut out lies in `text` (None: left to `strip`, or read
    unparsed), for `_Cut.texts`."""
    pattern, blake2b = f'"{key}":', hashlib.blake2b
    skip = len(pattern)
    digests, values, places = [], [], []
    find = text.find
    for i, (s, e) in enumerate(spans):
        if i in known:
            dig, value = known[i]
            digests.append(dig)
            values.append([value])
            places.append(None)
            continue
        at = find(pattern, s, e)
        start = at + skip
        close = find('"', start + 1, e) if at >= 0 and text.startswith('"', start) else -1
        if close < 0 or find("\\", start, close) >= 0:
            element, cut = strip(text[s:e], (key,))
            digests.append(digest(element))
            values.append(cut)
            places.append(None)
            continue
        hashed = blake2b(view[s:start], digest_size=16)
        hashed.update(view[close + 1:e])
        digests.append(hashed.digest())
        values.append([text[start:close + 1]])
        places.append((start, close + 1))
    return digests, values, places


class _Cut:
    """One page cut into its parts (before element numbers are known). Elements are hashed where
    they lie in the page's bytes, not copied out: only those to be stored are cut out (`texts`)."""

    __slots__ = ("page", "sha", "prefix", "suffix", "gaps", "digests", "volatile", "places")

    def __init__(self, page: Page, hashed: tuple[bytes | memoryview, str] | None = None,  # its bytes and sha256
                 given: tuple[list[str], list[bytes | None]] | None = None):
        """`given`: the sha256s of its dataset's pages and their elements' digests, joined, as another reading of the
        same texts found them (`cut_pages`): taken for this page when its sha256 is the one there, and it has no
        volatile values nor elements read unparsed."""
        self.page, text = page, page.decoded()
        data, self.sha = hashed or _hashed(page)
        spans = page.items
        self.digests: list[bytes] = []
        self.volatile: list[list[str | None]] = []
        self.places: list[tuple[int, int] | None] | None = None  # where each volatile value lies (`_digests_stripped`)
        if not spans:
            self.prefix, self.suffix, self.gaps = text, "", None
            return
        self.prefix, self.suffix = text[:spans[0][0]], text[spans[-1][1]:]
        gaps = [text[end:start] for (_, end), (start, _) in zip(spans, spans[1:])]
        self.gaps = None if gaps.count(",") == len(gaps) else gaps  # None: separators are plain commas
        keys, known = page.volatile, page.skipped  # elements read unparsed come with their digests
        if len(data) != len(text) or len(keys) > 1:  # offsets are characters: bytes only for ASCII text
            for i, (s, e) in enumerate(spans):
                if i in known:
                    dig, value = known[i]
                    if keys:
                        self.volatile.append([value])
                    self.digests.append(dig)
                    continue
                element = text[s:e]
                if keys:
                    element, values = strip(element, keys)
                    self.volatile.append(values)
                self.digests.append(digest(element))
        elif keys:
            self.digests, self.volatile, self.places = _digests_stripped(text, memoryview(data), spans, keys[0], known)
        elif (joined := _given(given, page, self.sha)) is not None:
            self.digests = joined
        elif known:
            view, blake2b = memoryview(data), hashlib.blake2b
            self.digests = [known[i][0] if i in known else blake2b(view[s:e], digest_size=16).digest()
                            for i, (s, e) in enumerate(spans)]
        else:
            self.digests = digests_at(data, spans)

    def texts(self, indices: list[int]) -> list[str | memoryview]:
        """The elements at `indices` as stored (volatile values cut out): views of the page's bytes when it has them
        (ASCII, `Page.data`) and no values are cut out, not copied (`packs.data` joins them, in the compressing
        threads: `Compressing`)."""
        page = self.page
        spans, keys, data = page.items, page.volatile, page.data
        if data is not None and not keys:
            return [data[spans[i][0]:spans[i][1]] for i in indices]
        text = page.decoded()
        places = self.places
        if places is not None:  # the one volatile value's place known: the text around it, not `strip` again
            return [text[spans[i][0]:places[i][0]] + text[places[i][1]:spans[i][1]] if places[i] is not None
                    else strip(text[spans[i][0]:spans[i][1]], keys)[0] for i in indices]
        elements = [text[spans[i][0]:spans[i][1]] for i in indices]
        return [strip(element, keys)[0] for element in elements] if keys else elements

    def layout(self, numbers: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {"prefix": self.prefix, "suffix": self.suffix, "runs": _rle_numbers(numbers)}
        if self.gaps is not None:
            out["gaps"] = self.gaps
        if self.page.volatile:
            out["keys"] = list(self.page.volatile)
            runs = itertools.groupby(map(tuple, self.volatile))  # run-length encoded: one refresh time a page
            out["volatile"] = [[list(values), len(list(run))] for values, run in runs]
        return out


def _given(given: tuple[list[str], list[bytes | None]] | None, page: Page, sha: str) -> list[bytes] | None:
    """A page's element digests from `given` (`_Cut`), when they are of its very text and as many as its elements."""
    if given is None or page.skipped or page.index >= len(given[0]) or given[0][page.index] != sha:
        return None
    joined = given[1][page.index]
    if not isinstance(joined, bytes) or len(joined) != 16 * len(page.items or ()):
        return None
    return _packs.split_digests(joined)


def _rle_numbers(numbers: list[int]) -> list[list[int]]:
    """[[first, count], ...] of consecutive numbers; where a run breaks found by C loops (runs are long)."""
    starts = [0, *itertools.compress(itertools.count(1), map((1).__ne__, map(int.__sub__, numbers[1:], numbers)))]
    return [[numbers[a], b - a] for a, b in zip(starts, starts[1:] + [len(numbers)])] if numbers else []


def _numbers(runs: list[list[int]]) -> list[int]:
    return [n for first, count in runs for n in range(first, first + count)]


# -- writing ---------------------------------------------------------------------------------
def pack_start(conn: Connection, tenant: str, n: int) -> int:
    """The first number of the pack holding element `n` (`n` itself when none does)."""
    return conn.execute(select(func.max(item_pack_table.c.first_n)).where(
        item_pack_table.c.tenant_id == tenant, item_pack_table.c.first_n <= n)).scalar() or n


def _previous_elements(conn: Connection, tenant: str,
                       previous: dict[str, list[dict]]) -> tuple[dict[bytes, int], dict[tuple[str, str], set[bytes]]]:
    """The elements the previous snapshot's pages held: digest -> n, and the digests of each
    (dataset, parent id) (a group's members, a review instance's decisions; "" for the rest).
    Their packs' digests are read by number range. An element seen only longer ago is stored
    again: rare, and it keeps the lookup to what one snapshot holds."""
    ranges = sorted((first, first + count) for entries in previous.values() for entry in entries
                    if entry.get("layout") for first, count in entry["layout"]["runs"])
    merged: list[list[int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1] + 4096:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    by_n: dict[int, bytes] = {}
    for lo, hi in merged:
        for first, digests in conn.execute(select(item_pack_table.c.first_n, item_pack_table.c.digests).where(
                item_pack_table.c.tenant_id == tenant, item_pack_table.c.first_n >= pack_start(conn, tenant, lo),
                item_pack_table.c.first_n < hi)):
            if first not in by_n:
                by_n.update(zip(itertools.count(first), _packs.split_digests(digests)))
    per_parent: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    for name, entries in previous.items():
        for entry in entries:
            if entry.get("layout"):
                held = per_parent[(name, entry["parent"])]
                for first, count in entry["layout"]["runs"]:
                    held.update(map(by_n.get, range(first, first + count)))
                held.discard(None)  # type: ignore[arg-type]  # a number no pack holds
    return dict(zip(by_n.values(), by_n.keys())), per_parent


class Unrecognised(Exception):
    """A snapshot read with what the history knew (`Page.skipped`) does not follow the tenant's newest
    snapshot: it must be read again in full (`pimtrail.collect`)."""


class Plan:
    """A snapshot's pages cut into elements and compared with the previous snapshot's, before
    anything is written: `unchanged` names the elements ((dataset, page, index)) whose text the
    previous snapshot's pages of the same dataset and parent held, and `same` the datasets whose
    pages are all as they were, so facts normalised from one element (and those datasets) are
    known to be unchanged too (`ingest` skips building and encoding them)."""

    def __init__(self, conn: Connection, tenant: str, pages: list[Page], previous_snapshot_id: int | None,
                 cuts: dict[str, list[_Cut]] | None = None,
                 given: dict[str, tuple[list[str], list[bytes | None]]] | None = None):
        """`cuts`: `cut_pages(pages)` made before (`CollectedSnapshot.cuts`), taken when they are of these pages;
        else they are cut here, with the digests `given` (`cut_pages`)."""
        self.conn, self.tenant = conn, tenant
        self.cuts = cuts if cuts is not None and _of(cuts, pages) else cut_pages(pages, given=given)
        # the previous snapshot's listings by dataset: their sha256s (the bases of this one's, `write`) and entries
        self.previous_shas = listing_shas(conn, tenant, previous_snapshot_id) if previous_snapshot_id else {}
        previous = {name: listing(conn, tenant, sha) for name, sha in self.previous_shas.items()}
        self.known, before = _previous_elements(conn, tenant, previous)
        self.unchanged: set[tuple[str, int, int]] = set()
        self.same = {name for name, cuts in self.cuts.items()
                     if name in previous and [c.sha for c in cuts] == [e["sha256"] for e in previous[name]]}
        # of the elements read unparsed (`Page.skipped`), by dataset: numbers go by digest, and the same bytes in
        # another dataset are another element there, with facts of other kinds
        self.kept_numbers: dict[str, set[int]] = defaultdict(set)
        self._pages = {(name, cut.page.index): cut for name, cuts in self.cuts.items() for cut in cuts}
        for name, cuts in self.cuts.items():
            for cut in cuts:
                held, skipped, digests = before.get((name, cut.page.parent)), cut.page.skipped, cut.digests
                if held:  # only parsed elements give facts: those read unparsed are not looked up
                    parsed = set(range(len(digests))).difference(skipped) if skipped else range(len(digests))
                    self.unchanged.update((name, cut.page.index, i) for i in parsed if digests[i] in held)
                if skipped:
                    if held is None or not held.issuperset(map(digests.__getitem__, skipped)):
                        raise Unrecognised(f"{name}: an element read unparsed is not one the previous snapshot held")
                    self.kept_numbers[name].update(map(self.known.__getitem__, map(digests.__getitem__, skipped)))
        # the new elements numbered and packed now, their packs compressed by two threads while the snapshot's
        # facts are built (zstd lets go of the GIL): `write` stores them
        last = conn.execute(select(item_pack_table.c.first_n + item_pack_table.c.count).where(
            item_pack_table.c.tenant_id == tenant).order_by(item_pack_table.c.first_n.desc()).limit(1)).scalar()
        self.packs = new_packs(tenant, self.cuts, self.known, last or 1)

    def number(self, element: tuple[str, int, int] | None) -> int | None:
        """The element number of (dataset, page, index) (new elements are numbered by the constructor)."""
        if element is None:
            return None
        cut = self._pages.get(element[:2])
        return self.known.get(cut.digests[element[2]]) if cut is not None and cut.digests else None

    def write(self, snapshot_id: int) -> tuple[list[dict], list[list[str]]]:
        """Store the pages. Returns the receipt entries (per page: dataset, page, parent, request,
        sha256) and the [dataset, listing sha256] pairs of listings holding layouts, both for the
        snapshot's content hash."""
        conn, tenant = self.conn, self.tenant
        entries, named, blobs = listings(self.cuts, self.known)
        before = self.previous_shas
        _blobs.store(conn, tenant, blobs, {sha: before[name] for name, sha, _ in named if name in before})
        insert(conn, receipt_list_table, ("tenant_id", "snapshot_id", "dataset", "sha256"),
               [(tenant, snapshot_id, name, sha) for name, sha, _ in named])
        # the packs last: their compression (`Compressing`) goes on meanwhile (the large first snapshot's waited
        # ~0.3 s less)
        insert(conn, item_pack_table, ("tenant_id", "first_n", "count", "size", "digests", "data"), self.packs.rows())
        return entries, [[name, sha] for name, sha, cut_up in named if cut_up]


class Compressing:
    """item_pack rows whose texts two threads join and compress meanwhile (zstd lets go of the GIL: the other core).
    A pack's data is made only there and dropped once compressed: the large first snapshot's 364 MB of elements are
    never all in memory at once. Its elements wait as `_Cut.texts` gives them: views of the pages' bytes, or texts
    (volatile values cut out, a page without bytes)."""

    def __init__(self, packs: list[tuple[str, int, int, int, bytes, list[str | memoryview]]]):
        self.pool = ThreadPoolExecutor(2) if packs else None
        self.compressed = [self.pool.submit(_compressed, p[5]) for p in packs] if self.pool else []
        self.packs = [p[:5] for p in packs]

    def rows(self) -> list[tuple[str, int, int, int, bytes, bytes]]:
        """(tenant, first_n, count, chars, digests, compressed texts) per pack, once compressed."""
        try:
            return [(*pack, z.result()) for pack, z in zip(self.packs, self.compressed)]
        finally:
            if self.pool is not None:
                self.pool.shutdown()


def _compressed(part: list[str | memoryview]) -> bytes:
    return _packs.compress(_packs.data(part))


def new_packs(tenant: str, cuts: dict[str, list[_Cut]], known: dict[bytes, int], next_n: int) -> Compressing:
    """Number the elements `known` does not hold from `next_n` on (adding them to it) and pack them:
    item_pack rows, compressed in the background (`Compressing.rows`)."""
    first_new, texts, digests = next_n, [], []
    for dataset_cuts in cuts.values():
        for cut in dataset_cuts:
            # the digests `known` lacks, found by C loops; when none is there twice (a first snapshot's every
            # element is new: 438,000 of a large tenant's), numbered in order by C loops too
            fresh = list(itertools.compress(itertools.count(), map(operator.not_, map(known.__contains__,
                                                                                       cut.digests))))
            new = list(map(cut.digests.__getitem__, fresh))
            if len(set(new)) == len(new):
                known.update(zip(new, itertools.count(next_n)))
                digests += new
                next_n += len(new)
            else:  # one new twice gets one number, at its first place
                fresh = []
                for i, dig in enumerate(cut.digests):
                    if dig not in known:
                        known[dig] = next_n
                        fresh.append(i)
                        digests.append(dig)
                        next_n += 1
            if fresh:
                texts += cut.texts(fresh)
    return Compressing(list(_packs.parts(tenant, first_new, texts, digests)))


def listings(cuts: dict[str, list[_Cut]], known: dict[bytes, int]
             ) -> tuple[list[dict], list[tuple[str, str, bool]], dict[str, bytes]]:
    """Each dataset's listing, its elements numbered by `known`. Returns the receipt entries, the
    (dataset, listing sha256, whether it cuts pages into elements) triples, and the blobs to store
    (listings, and bodies kept whole) by sha256."""
    entries: list[dict] = []
    named: list[tuple[str, str, bool]] = []
    blobs: dict[str, bytes] = {}
    for name, dataset_cuts in cuts.items():
        listing = []
        for cut in dataset_cuts:
            page = cut.page
            layout = None
            if page.items:
                layout = cut.layout(list(map(known.__getitem__, cut.digests)))
            else:
                blobs[cut.sha] = page.payload
            listing.append({"page": page.index, "parent": page.parent, "request": page.request[:2000],
                            "sha256": cut.sha, "layout": layout})
            entries.append({"dataset": name, "page": page.index, "parent": page.parent,
                            "request": page.request[:2000], "sha256": cut.sha})
        text = hashing.canonical({"pages": listing})
        sha = hashing.sha256_hex(text)
        blobs[sha] = text
        named.append((name, sha, any(e["layout"] for e in listing)))
    return entries, named, blobs


def _hashed(page: Page) -> tuple[bytes | memoryview, str]:
    """A page's UTF-8 (`Page.utf8`) and its sha256."""
    data = page.utf8
    return data, hashlib.sha256(data).hexdigest()


def _of(cuts: dict[str, list[_Cut]], pages: list[Page]) -> bool:
    """Whether `cuts` are `cut_pages(pages)`'s: of these very page objects, in their order."""
    made = [cut.page for dataset_cuts in cuts.values() for cut in dataset_cuts]
    return len(made) == len(pages) and all(map(operator.is_, made, pages))


def cut_pages(pages: Iterable[Page], batch: int = 16,
              given: dict[str, tuple[list[str], list[bytes | None]]] | None = None) -> dict[str, list[_Cut]]:
    """A snapshot's pages cut into elements, by dataset. The large pages are hashed `batch` at a time by two
    threads while this one waits (sha256 lets go of the GIL, so both cores hash), then cut here. `given`: by
    dataset, element digests another reading found (`_Cut`; a first snapshot's worker, for its audit log:
    `appending.FirstEvents.digests`)."""
    cuts: dict[str, list[_Cut]] = defaultdict(list)
    pages, large, given = list(pages), 1 << 16, given or {}
    with ThreadPoolExecutor(2) as pool:
        for part in (pages[at:at + batch] for at in range(0, len(pages), batch)):
            hashed = iter(list(pool.map(_hashed, [p for p in part if p.size >= large])))
            for page in part:
                cuts[page.dataset].append(_Cut(page, next(hashed) if page.size >= large else None,
                                               given.get(page.dataset)))
    return cuts


# -- reading ---------------------------------------------------------------------------------
def listing(conn: Connection, tenant: str, sha: str) -> list[dict]:
    text = _blobs.read(conn, tenant, sha)  # stored whole or as a delta (pimtrail.store.blobs)
    return [] if text is None else json.loads(text)["pages"]


def listing_shas(conn: Connection, tenant: str, snapshot_id: int) -> dict[str, str]:
    """{dataset: sha256 of its listing} of one snapshot."""
    return dict(conn.execute(select(receipt_list_table.c.dataset, receipt_list_table.c.sha256).where(
        receipt_list_table.c.tenant_id == tenant, receipt_list_table.c.snapshot_id == snapshot_id)).all())


def read_listings(conn: Connection, tenant: str, snapshot_id: int) -> dict[str, list[dict]]:
    return {name: listing(conn, tenant, sha) for name, sha in listing_shas(conn, tenant, snapshot_id).items()}


class Elements:
    """Elements by number, reading and unpacking each needed pack once."""

    def __init__(self, conn: Connection, tenant: str):
        self.conn, self.tenant = conn, tenant
        self.packs: dict[int, list[str]] = {}
        self.last: tuple[int, list[str]] = (0, [])

    def get(self, n: int) -> str:
        first, elements = self.last
        if not first <= n < first + len(elements):
            row = self.conn.execute(select(item_pack_table.c.first_n, item_pack_table.c.data).where(
                item_pack_table.c.tenant_id == self.tenant, item_pack_table.c.first_n <= n)
                .order_by(item_pack_table.c.first_n.desc()).limit(1)).first()
            if row is None:
                raise KeyError(n)
            if row.first_n not in self.packs:
                self.packs[row.first_n] = _packs.unpack(row.data)
            first, elements = self.last = row.first_n, self.packs[row.first_n]
            if n - first >= len(elements):
                raise KeyError(n)
        return elements[n - first]


def rebuild(conn: Connection, tenant: str, entry: dict, elements: Elements | None = None) -> bytes:
    """A page's exact bytes from its listing entry."""
    layout = entry.get("layout")
    if layout is None:
        text = _blobs.read(conn, tenant, entry["sha256"])
        if text is None:
            raise KeyError(entry["sha256"])
        return text
    elements = elements or Elements(conn, tenant)
    texts = [elements.get(n) for n in _numbers(layout["runs"])]
    keys = tuple(layout.get("keys") or ())
    if keys:
        texts = [restore(t, keys, v) for t, v in zip(texts, _unrle(layout["volatile"]))]
    gaps = layout.get("gaps")
    if gaps is None:
        body = ",".join(texts)
    else:
        body = "".join(t + g for t, g in zip(texts, gaps + [""]))
    return (layout["prefix"] + body + layout["suffix"]).encode()
