"""A tenant's first audit log cut into its pages and elements by the worker that parses it, for the reader too.

The worker making a first snapshot's audit events (`pimtrail.store.appending.prepare_audit`) reads the audit log's file
in full, as `read_export` reads it: every page's place in the file and every element's place in its page. Before it
normalises the events it gives that cut to the parent (`of_reading`, a part of its value), whose reader has left the
audit log's pages to come (`read_export(cut=...)`, `CollectedSnapshot.pend`). When the ingest first asks for the
snapshot's pages, ~1 s later, the parent takes the cut and makes the pages of its own copy of the file's bytes
(`pages`): it does not cut the 243 MB of a large tenant's audit log again (msgspec's pass over each one-line body, the
reader's walk: ~0.5 s), nor make its text.

The cut is taken only for the bytes the worker read: the file as long as the worker's, all ASCII (offsets are the
bytes' then) with no carriage return (the reader's offsets would be of its text with the line ends made one), and
the bytes outside the pages' bodies (the array around them, a `pages` form's requests and parents) hashing as the
worker's did. The bodies themselves are compared later, as before: the ingest takes the worker's events only when
each page's sha256 is the parent's (`FirstEvents.normalised`), and otherwise reads the pages it holds here
(`CollectedSnapshot.undefer`). Without a cut (none given, one that does not fit, a worker stopped) the reader cuts the
file itself, as it did (`unparsed.LineCut`)."""

from __future__ import annotations

import hashlib
from array import array
from pathlib import Path
from typing import Any

from pimtrail.model import Page

from .rawjson import FILE, ITEMS

# (the file's size, sha256 of its bytes outside the bodies, per page (parent, request, body start, body end, its
# elements' (start, end) in the body as array('q') bytes))
Cut = tuple[int, str, list[tuple[str, str, int, int, bytes]]]


def _outside(data: bytes | memoryview, spans: list[tuple[int, int]]) -> str:
    """sha256 of the bytes of `data` outside the (start, end) `spans` (in order, apart)."""
    out, at = hashlib.sha256(), 0
    view = memoryview(data)
    for start, end in spans:
        out.update(view[at:start])
        at = end
    out.update(view[at:])
    return out.hexdigest()


def of_reading(source: Path, pages: list[Any], raws: dict[int, Any]) -> Cut | None:
    """In the worker: the cut of the file `source` as `exportdir._pages(..., spans=True)` read it (`pages`, `raws`);
    None when the parent could not take it (not ASCII, a byte order mark or carriage returns the reading dropped, a
    body not read where it lies)."""
    text, data = raws.get(FILE, (None, None))
    if data is None or len(data) != len(text) or source.stat().st_size != len(data):
        return None
    made, spans = [], []
    for page in pages:
        span, marks = raws.get(id(page.body)), raws.get(ITEMS + id(page.body))
        if type(span) is not tuple or marks is None or spans and span[0] < spans[-1][1]:
            return None
        spans.append(span)
        offsets = array("q", [n for mark in marks for n in mark])
        made.append((page.parent, page.request, span[0], span[1], offsets.tobytes()))
    return len(data), _outside(data, spans), made


def pages(dataset: Any, path: Path, cut: Any) -> tuple[list[Page], int] | None:
    """The pages of `dataset` (a `datasets.Dataset`) made of the file at `path` as the worker cut it (`of_reading`), and
    how many elements they hold; None when the file's bytes are not the ones the worker cut (see the module)."""
    try:
        size, outside, made = cut
        data = path.read_bytes()
        if len(data) != size or not data.isascii() or b"\r" in data:
            return None
        spans = [(start, end) for _, _, start, end, _ in made]
        if any(not 0 <= s <= e <= size for s, e in spans) or any(a[1] > b[0] for a, b in zip(spans, spans[1:])) \
                or _outside(data, spans) != outside:
            return None
        view, out, rows = memoryview(data), [], 0
        for index, (parent, request, start, end, marks) in enumerate(made):
            numbers = iter(array("q", marks))
            items = tuple(zip(numbers, numbers))
            rows += len(items)
            out.append(Page(dataset.name, index, parent, request, None, items, dataset.volatile, {}, view[start:end]))
        return out, rows
    except (TypeError, ValueError, OSError):  # not a cut of ours, or the file gone: the reader reads it
        return None
