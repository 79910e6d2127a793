"""Offline collection: read an export directory (docs/export-format.md) into a CollectedSnapshot.

Everything is read and checked before the history is touched: bad input raises `InputError`
naming the file and field, and the database stays as it was.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from itertools import takewhile
from pathlib import Path
from typing import Any, Callable

from pimtrail.bulk import kept_heap, paused_gc
from pimtrail.errors import InputError
from pimtrail.model import (ERROR, MISSING, OK, SKIPPED, CollectedSnapshot, DatasetCoverage, EventRecord, Known, Page,
                            Remake)
from pimtrail.store.elements import digest, digests_at
from pimtrail.store.hashing import cuts_digest
from pimtrail.timeutil import parse_iso

from . import auditcut
from . import datasets as ds
from .normalize import (SKIPPABLE, DatasetPages, RawPage, audit, authn, directory, normalize, record_sign_in_source,
                        reviews, sign_in_source, unobserved_kinds)
from .normalize.base import quoted
from .unparsed import LineCut, Skipper
from .rawjson import BODY_SPEC, FILE, ITEMS, _FILE_SPEC, _file_spec, _finite, _no_constant, load_with_raw, whole

FORMAT = "pimtrail-export/1"
SOURCES = {"graph", "sample", "manual", "export"}
FIX_FORMAT = "see docs/export-format.md"


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark (Windows PowerShell 5.1 writes one): skipped
    except FileNotFoundError:
        raise InputError("file not found", path=str(path), fix=FIX_FORMAT) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path=str(path), fix="save the file as UTF-8 JSON") from None
    try:
        return whole(json.loads(text, parse_constant=_no_constant, parse_float=_finite), text)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                         path=str(path), fix="fix the JSON or export the dataset again") from None
    except ValueError as exc:  # NotJSON, or an integer of more digits than Python converts
        raise InputError(f"malformed JSON: {exc}", path=str(path), fix="fix the JSON or export the dataset again") from None


def _when(value: Any, path: Path, field: str) -> Any:
    try:
        return parse_iso(value)
    except (ValueError, TypeError):
        raise InputError(f"not a date-time: {quoted(value)}", path=str(path), field=field,
                         fix="use ISO 8601 with a zone, e.g. 2026-07-01T06:00:00Z") from None


def _load_file_with_raw(path: Path, skipper: Skipper | LineCut | None = None, spans: bool = False,
                        typed: Any = None) -> tuple[Any, dict[int, str]]:
    spec = _FILE_SPEC if skipper is None and not spans else _file_spec(dict(BODY_SPEC, skip=skipper, spans=spans))
    try:
        data = path.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):  # a byte order mark, before any body: skipped as `_load_json` skips it
            data = data[3:]
        text = data.decode("utf-8")
        if b"\r" in data:  # as `Path.read_text` gives it: universal newlines
            text, data = text.replace("\r\n", "\n").replace("\r", "\n"), None
        if skipper is not None:
            skipper.bind(text, data)  # the file's bytes: not encoded again to hash elements where they lie
        value, raws = load_with_raw(text, spec, data, typed)
        if spans:
            raws[FILE] = (text, data)  # type: ignore[assignment]
        return value, raws
    except (ValueError, IndexError, UnicodeDecodeError, FileNotFoundError):
        if isinstance(skipper, LineCut):  # a line it cut may not be an element, the rest then no JSON: read in full
            return _load_file_with_raw(path, spans=spans, typed=typed)
        if skipper is not None:  # nothing recognised counts: the plain reader parses every element
            skipper.kept.clear()
            skipper.found.clear()
        return _load_json(path), {}  # the plain reader names the problem (or parses it anyway)


# datasets whose elements of Graph's shape are decoded typed (their normalisers take both: `normalize.typed`)
_TYPED = {ds.AUDIT_DATASET: audit.decode_entry, "users": directory.decode_user,
          "registration_details": authn.decode_registration, "access_review_decisions": reviews.decode_decision}


def _check_body(body: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise InputError("not a Graph response body", path=str(path), field=where,
                         fix='expected {"value": [...]} as Graph returns it; ' + FIX_FORMAT)
    return body


def _pages(dataset: ds.Dataset, path: Path, raws: dict[int, str] | None = None,
           skipper: Skipper | None = None, spans: bool = False) -> list[RawPage]:
    """Read one dataset file in any of its three forms (see the format doc). When `raws` is given it is filled with
    {id(page body): the body's exact text in the file} (`spans`: as `_load_file_with_raw` gives it). The elements
    of a dataset in `_TYPED` that have Graph's shape are read as typed objects, not dicts."""
    content, found = _load_file_with_raw(path, skipper, spans, _TYPED.get(dataset.name))
    if raws is not None:
        raws.update(found)
    per_parent = dataset.parent.named_in_pages
    if isinstance(content, dict) and "pages" in content:
        if not isinstance(content["pages"], list):
            raise InputError("'pages' must be a list", path=str(path), field="pages", fix=FIX_FORMAT)
        pages = []
        for index, entry in enumerate(content["pages"]):
            where = f"pages[{index}]"
            if not isinstance(entry, dict):
                raise InputError("expected an object with request, parent and body", path=str(path),
                                 field=where, fix=FIX_FORMAT)
            parent, request = entry.get("parent") or "", entry.get("request")
            for name, value in (("parent", parent), ("request", request)):
                if value is not None and not isinstance(value, str):
                    raise InputError(f"expected text, found {type(value).__name__}", path=str(path),
                                     field=f"{where}.{name}", fix=FIX_FORMAT)
            if per_parent and not parent:
                raise InputError("missing", path=str(path), field=f"{where}.parent",
                                 fix=f"{dataset.name} is requested per {dataset.parent.value}: "
                                     "give each page the parent object's id")
            body = _check_body(entry.get("body"), path, f"{where}.body")
            pages.append(RawPage(parent, request or dataset.request(parent), body))
        return pages
    if per_parent:
        raise InputError("pages need their parent id", path=str(path),
                         fix=f'{dataset.name} is requested per {dataset.parent.value}: write '
                             '{"pages": [{"parent": ID, "request": URL, "body": {...}}]}')
    bodies = content if isinstance(content, list) else [content]
    return [RawPage("", dataset.request(), _check_body(body, path, f"[{i}]" if isinstance(content, list) else "body"))
            for i, body in enumerate(bodies)]


def read_manifest(root: Path) -> dict[str, Any]:
    if not root.is_dir():
        raise InputError("not a directory", path=str(root), fix="pass an export directory (or 'sample' / 'graph')")
    path = root / "manifest.json"
    if not path.exists():
        raise InputError("missing manifest.json", path=str(root), fix=FIX_FORMAT)
    manifest = _load_json(path)
    if not isinstance(manifest, dict):
        raise InputError("expected a JSON object", path=str(path), fix=FIX_FORMAT)
    if manifest.get("format") != FORMAT:
        raise InputError(f"unsupported format {manifest.get('format')!r}", path=str(path), field="format",
                         fix=f'set "format": "{FORMAT}"')
    tenant = manifest.get("tenant_id")
    if not isinstance(tenant, str) or not ds.GUID.match(tenant):
        raise InputError(f"not a tenant id: {tenant!r}", path=str(path), field="tenant_id",
                         fix="use the directory (tenant) id, a GUID")
    manifest["_collected_at"] = _when(manifest.get("collected_at"), path, "collected_at")
    if manifest["_collected_at"].year >= 9999:  # the periods, ranges and charts around it would leave the calendar
        raise InputError(f"collected at {manifest['collected_at']}, in the calendar's last year", path=str(path),
                         field="collected_at", fix="give the time the data was read, e.g. 2026-07-01T06:00:00Z")
    if manifest.get("source", "manual") not in SOURCES:
        raise InputError(f"unknown source {manifest.get('source')!r}", path=str(path), field="source",
                         fix=f"one of {', '.join(sorted(SOURCES))}")
    entries = manifest.get("datasets")
    if not isinstance(entries, dict):
        raise InputError("missing or not an object", path=str(path), field="datasets", fix=FIX_FORMAT)
    for name, entry in entries.items():
        if name not in ds.BY_NAME:
            raise InputError("unknown dataset", path=str(path), field=f"datasets.{name}",
                             fix=f"known datasets: {', '.join(ds.BY_NAME)}")
        if not isinstance(entry, dict) or not ({"file", "error"} & set(entry)):
            raise InputError('expected {"file": ...} or {"error": {...}}', path=str(path),
                             field=f"datasets.{name}", fix=FIX_FORMAT)
    return manifest


def read_export(root: Path, *, tenant: str | None = None, source: str | None = None,
                known: Known | None = None, defer: bool = False, cut: Callable[[], Any] | None = None
                ) -> CollectedSnapshot:
    """With `known` (`HistoryStore.known`: what the history holds of the tenant's newest snapshot), the
    elements of big datasets that snapshot held are recognised without being parsed (`collectors.unparsed`).
    `defer`: the audit log is cut into its elements but not parsed, its events left to a worker reading the same
    file (`CollectedSnapshot.deferred`); with `cut` (that worker's `FirstEvents.cut`), not even cut: its pages are
    made when first asked for, of the worker's cut when it fits the file (`collectors.auditcut`)."""
    with paused_gc(), kept_heap():
        return _read_export(Path(root), tenant, source, known, defer, cut if defer else None)


def _read_export(root: Path, tenant: str | None, source: str | None, known: Known | None,
                 defer: bool, cut: Callable[[], Any] | None) -> CollectedSnapshot:
    manifest = read_manifest(root)
    manifest_path = root / "manifest.json"
    tenant_id = manifest["tenant_id"].lower()
    if tenant and tenant.lower() != tenant_id:
        raise InputError(f"export is for tenant {tenant_id}, not the --tenant {tenant} asked for",
                         path=str(manifest_path), field="tenant_id",
                         fix="collect the right export or drop --tenant")
    snap = CollectedSnapshot(tenant_id=tenant_id, collected_at=manifest["_collected_at"],
                             source=source or ("sample" if manifest.get("source") == "sample" else "export"),
                             source_ref=str(root.resolve()), root=root)
    collected: dict[str, DatasetPages] = {}
    pending: Callable[[list[Page]], None] | None = None  # the audit log's pages, to come (`_pages_to_come`)
    for dataset in ds.DATASETS:
        entry = manifest["datasets"].get(dataset.name)
        cov = DatasetCoverage(dataset.name, MISSING, dataset.optional, query=dataset.request())
        if entry is None:
            snap.coverage.append(cov)
            continue
        window = entry.get("window") or {}
        if window:
            cov.window_from = _when(window.get("from"), manifest_path, f"datasets.{dataset.name}.window.from")
            cov.window_to = _when(window.get("to"), manifest_path, f"datasets.{dataset.name}.window.to")
        if "error" in entry:
            error = entry["error"] if isinstance(entry["error"], dict) else {"message": str(entry["error"])}
            cov.status, cov.http_status = ERROR, error.get("http_status")
            cov.error_code, cov.error_message = error.get("code"), (error.get("message") or "")[:2000]
            snap.coverage.append(cov)
            continue
        if "\x00" in str(entry["file"]):  # no path holds one (resolving it raised ValueError: a traceback, before)
            raise InputError("not a file name: it holds a NUL character", path=str(manifest_path),
                             field=f"datasets.{dataset.name}.file", fix="use a file name inside the directory")
        path = root / str(entry["file"])
        if root.resolve() not in path.resolve().parents:
            raise InputError("file is outside the export directory", path=str(manifest_path),
                             field=f"datasets.{dataset.name}.file", fix="use a file name inside the directory")
        if cut is not None and dataset.name == ds.AUDIT_DATASET:  # its coverage's counts come with its pages
            cov.status, snap.files[dataset.name] = OK, str(path)
            collected[dataset.name] = DatasetPages(dataset.name, str(path), [])
            pending = partial(_pages_to_come, dataset, path, cov, len(snap.pages), cut)
            snap.coverage.append(cov)
            continue
        raws: dict[int, str] = {}
        skipper: Skipper | LineCut | None = None
        if defer and dataset.name == ds.AUDIT_DATASET:
            skipper = LineCut()
        elif dataset.name in SKIPPABLE:
            skipper = Skipper.of(known, dataset.name, dataset.volatile)
        pages = DatasetPages(dataset.name, str(path), _pages(dataset, path, raws, skipper, spans=True))
        snap.files[dataset.name] = str(path)
        if skipper is not None and skipper.kept:
            snap.based_on = known.snapshot_id  # type: ignore[union-attr]
        collected[dataset.name] = pages
        cov.status = OK
        _count(cov, dataset, pages.pages, pages.rows)
        snap.coverage.append(cov)
        snap.pages += _snapshot_pages(dataset, pages, raws, skipper)

    _check_tenant(collected.get("organization"), tenant_id)
    sign_ins = sign_in_source(manifest["datasets"], (p.decoded() for p in snap.pages if p.dataset == "users"))
    record_sign_in_source(snap.coverage, sign_ins)
    audit_log = collected.get(ds.AUDIT_DATASET)
    deferred = pending is not None or audit_log is not None and \
        any(v is SKIPPED for p in audit_log.pages for v in p.body["value"])
    snap.facts, snap.events = normalize({name: pages for name, pages in collected.items()
                                         if not (deferred and name == ds.AUDIT_DATASET)}, sign_ins)
    if deferred:  # its events, none of them in `events` yet, come from a worker or `undefer`
        snap.remake, snap.deferred = Remake(ds.AUDIT_DATASET, 0, audit_pages), partial(_undefer, audit_log.file)
    elif audit_log is not None:  # normalize's events begin with the audit log's, as `audit_pages` makes them
        snap.remake = Remake(ds.AUDIT_DATASET, sum(1 for _ in takewhile(lambda e: e.kind == "audit", snap.events)),
                             audit_pages)
    snap.unobserved = unobserved_kinds(set(collected), sign_ins)
    if pending is not None:
        snap.pend(pending)
    return snap


def _pages_to_come(dataset: ds.Dataset, path: Path, cov: DatasetCoverage, at: int, cut: Callable[[], Any],
                   pages: list[Page]) -> None:
    """The deferred audit log's pages put at `at` in the snapshot's `pages` (`CollectedSnapshot.pend`), and its
    coverage's counts: made of the worker's cut when it gives one that fits the file (`auditcut.pages`), else of the
    file cut here, as the reader cuts it without a worker's (`LineCut`), raising `InputError` as that does."""
    given = cut()
    made = auditcut.pages(dataset, path, given) if given is not None else None
    if made is None:
        raws: dict[int, str] = {}
        skipper = LineCut()
        with paused_gc(), kept_heap():
            read = DatasetPages(dataset.name, str(path), _pages(dataset, path, raws, skipper, spans=True))
            made = _snapshot_pages(dataset, read, raws, skipper), read.rows
    new, rows = made
    _count(cov, dataset, new, rows)
    pages[at:at] = new


def _count(cov: DatasetCoverage, dataset: ds.Dataset, pages: list[RawPage] | list[Page], rows: int) -> None:
    """A dataset's coverage counts: its elements, pages and requests (a page each per parent, else one)."""
    cov.rows, cov.pages = rows, len(pages)
    cov.requests = len({(p.parent, p.request) for p in pages}) if dataset.parent is not ds.Parent.NONE \
        else (1 if pages else 0)


def _snapshot_pages(dataset: ds.Dataset, pages: DatasetPages, raws: dict[int, str],
                    skipper: Skipper | LineCut | None) -> list[Page]:
    """The receipts of a dataset's pages: their texts as the file holds them (made when read, of their bytes, when
    the file is ASCII: `Page.text`), where their elements lie, which elements `skipper` recognised (`Page.skipped`),
    and their bytes in the file's when it is ASCII (`Page.data`)."""
    out = []
    found = 0  # of skipper.found, handed to the pages in their order
    for index, page in enumerate(pages.pages):
        span = raws.get(id(page.body))
        if type(span) is tuple:  # read with `spans`: where the body lies in the file; its text made of its bytes
            # when they are ASCII and it is read (`Page.text`)
            items, data = _items(page, raws), _body_bytes(span, raws)
            text = _file_text(raws)[span[0]:span[1]] if data is None else None
        else:
            (text, items), data = _page_text(page, raws), None
        skipped: dict[int, tuple[bytes, str | None]] = {}
        if skipper is not None and skipper.found and items is not None:
            at = [i for i, value in enumerate(page.body["value"]) if value is SKIPPED]
            skipped = dict(zip(at, skipper.found[found:found + len(at)]))
            found += len(at)
        out.append(Page(dataset.name, index, page.parent, page.request, text, items, dataset.volatile, skipped, data))
    return out


def _undefer(file: str, snap: CollectedSnapshot) -> bool:
    """`CollectedSnapshot.undefer`: the deferred audit log's pages parsed (their texts as read, not the file again),
    their events put first in `snap.events`, their receipts cut as the full parse cuts them. Whether they were cut
    so already. Raises `InputError` for what the full read would have raised."""
    dataset = ds.BY_NAME[ds.AUDIT_DATASET]
    at = [i for i, page in enumerate(snap.pages) if page.dataset == dataset.name]
    raws: dict[int, str] = {}
    with paused_gc():
        try:
            pages = DatasetPages(dataset.name, file, [RawPage(p.parent, p.request, _page_body(p.decoded(), raws))
                                                      for p in (snap.pages[i] for i in at)])
        except (ValueError, IndexError):  # as the file's reading would say it
            _load_json(Path(file))
            raise InputError("a page is not JSON as read before", path=file, fix="export the dataset again") from None
        events = pages.normalised(audit.directory_audits)
    remade = _snapshot_pages(dataset, pages, raws, None)
    same = all(snap.pages[i].items == page.items for i, page in zip(at, remade))
    for i, page in zip(at, remade):
        snap.pages[i] = page
    for cov in snap.coverage:
        if cov.dataset == dataset.name:
            cov.rows = pages.rows
    snap.events[:0] = events
    snap.remake = Remake(dataset.name, len(events), audit_pages)
    return same


def _page_body(text: str, raws: dict[int, str]) -> dict[str, Any]:
    body, found = load_with_raw(text, BODY_SPEC)
    raws.update(found)
    return body


def _page_text(page: RawPage, raws: dict[int, str]) -> tuple[str, tuple[tuple[int, int], ...] | None]:
    """A page's receipt: the body exactly as the file holds it (as Graph returned it), and its elements' offsets."""
    raw = raws.get(id(page.body))
    if raw is None:
        return json.dumps(page.body, ensure_ascii=False, separators=(",", ":")), None
    return raw, _items(page, raws)


def _items(page: RawPage, raws: dict[int, Any]) -> tuple[tuple[int, int], ...] | None:
    marks = raws.get(ITEMS + id(page.body))
    return tuple(marks) if marks is not None else None


def _file_text(raws: dict[int, Any]) -> str:
    return raws[FILE][0]


def _body_bytes(span: tuple[int, int], raws: dict[int, Any]) -> memoryview | None:
    """The bytes of the body at `span` in a file read with `spans`, a view of the file's: when the file is ASCII
    (character offsets are the bytes' then), else None."""
    text, data = raws[FILE]
    return memoryview(data)[span[0]:span[1]] if data is not None and len(data) == len(text) else None


def audit_pages(source: Path | list[tuple[str, str, str]], cut: Callable[[Any], None] | None = None
                ) -> tuple[list[str], str, list[EventRecord], Callable[[], list[bytes | None]]]:
    """What `read_export` makes of the audit log (`Remake`): its pages' texts' sha256, in order, where their
    elements lie (`hashing.cuts_digest`), its events, and a function giving each page's elements' digests as the
    receipts take them (`store.elements.digest` of each element's text, joined; None for a page without elements),
    which the caller calls only when it takes that step on (`appending.prepare_audit`). `source`: the dataset's
    file, read as `read_export` reads it, or its pages as (parent, request, body text). `cut`, for a file: given
    where the file's pages and their elements lie as soon as it is read (`auditcut.of_reading`; None when the reader
    could not take that), before the events are normalised."""
    raws: dict[int, str] = {}
    if isinstance(source, Path):  # the bodies hashed where they lie in the file, not copied out (243 MB: ~0.2 s)
        pages = _pages(ds.BY_NAME[ds.AUDIT_DATASET], source, raws, spans=True)
        if cut is not None:
            cut(auditcut.of_reading(source, pages, raws))
        hashed = [_page_hashed(page, raws) for page in pages]
    else:
        pages = [RawPage(parent, request, _page_body(text, raws)) for parent, request, text in source]
        hashed = [_hashed_text(*_page_text(page, raws)) for page in pages]
    events = DatasetPages(ds.AUDIT_DATASET, str(source) if isinstance(source, Path) else "(pages)",
                          pages).normalised(audit.directory_audits)
    return [sha for sha, _, _ in hashed], cuts_digest([cut for _, cut, _ in hashed]), events, \
        partial(_pages_digests, [(body, cut) for _, cut, body in hashed])


def _page_hashed(page: RawPage, raws: dict[int, Any]
                 ) -> tuple[str, tuple[tuple[int, int], ...] | None, bytes | memoryview | str]:
    """The sha256 of `_page_text`'s text, its cut and what its elements' digests are taken of (`_hashed_text`), for
    a page read with `spans`: the file's bytes hashed where the body lies when the file is ASCII (character offsets
    are the bytes' then), else its text's slice encoded."""
    span = raws.get(id(page.body))
    if type(span) is not tuple:  # no span: the file read by the stdlib after all, or a body that is the whole file
        return _hashed_text(*_page_text(page, raws))
    body = _body_bytes(span, raws)
    if body is None:
        return _hashed_text(_file_text(raws)[span[0]:span[1]], _items(page, raws))
    return hashlib.sha256(body).hexdigest(), _items(page, raws), body


def _hashed_text(text: str, cut: tuple[tuple[int, int], ...] | None
                 ) -> tuple[str, tuple[tuple[int, int], ...] | None, bytes | str]:
    """The sha256 of a page's text, its cut, and its bytes when they are ASCII (offsets are the bytes' then), else
    the text."""
    data = text.encode()
    return hashlib.sha256(data).hexdigest(), cut, data if len(data) == len(text) else text


def _pages_digests(pages: list[tuple[bytes | memoryview | str, tuple[tuple[int, int], ...] | None]]
                   ) -> list[bytes | None]:
    """Each page's elements' digests, joined (`store.elements.digests_at` of ASCII bytes, `digest` of a text's
    slices), None for a page without a cut."""
    return [None if cut is None else b"".join(digests_at(body, cut)) if type(body) is not str
            else b"".join(digest(body[s:e]) for s, e in cut) for body, cut in pages]


def _check_tenant(organization: DatasetPages | None, tenant_id: str) -> None:
    if organization is None:
        return
    ids = [str(item.data.get("id", "")).lower() for item in organization.items()]
    if ids and tenant_id not in ids:
        raise InputError(f"organization id {quoted(ids[0])} does not match the manifest's tenant_id {tenant_id}",
                         path=organization.file, field="value[0].id",
                         fix="the files come from different tenants; export them again together")
