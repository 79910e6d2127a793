"""Where in the export an identifier the ingest refused came from (`columns.ColumnError`: too long for its column,
holding NUL, not text): only the ingest's column checks find those, after the reader, so their error named a table
and column ("fact.key holds a NUL character"), not the file and element to fix. Now it names them as the reader
names an element (`collectors.normalize.base.Item.where`): `users.json: value[3]: fact.key holds ...`.

A fact names the element it was normalised from (`FactRecord.element`). An event does not (its record is kept
small: 180,000 of a large tenant's), so its element is the first of its dataset's that holds the refused value as a
string (an id is copied from the element as it is; a role request's is `<id>:<status>`). Only on
the error's path: nothing is looked up otherwise. Found nowhere, the error stays as it was.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pimtrail.errors import InputError

if TYPE_CHECKING:
    from pimtrail.model import CollectedSnapshot
    from pimtrail.store.columns import ColumnError

# the datasets events are normalised from, by their kind (`collectors.normalize`)
EVENT_DATASETS = {"audit": "directory_audits", "role_request": "role_assignment_requests"}
_FACT_COLUMNS = ("kind", "key", "principal_id", "role_id", "group_id")  # FactRecord's attributes of those names


def located(exc: ColumnError, snap: CollectedSnapshot) -> InputError:
    """`exc` naming the file and element its value came from, when found (a fact's or an event's column); else `exc`
    itself."""
    if exc.table not in ("fact", "event"):
        return exc
    element = _of_fact(exc, snap) if exc.table == "fact" else None
    if element is None:
        element = _in_text(exc.value, snap, set(EVENT_DATASETS.values()) if exc.table == "event" else None)
    if element is None:
        return exc
    dataset, page, index = element
    single = sum(1 for p in snap.pages if p.dataset == dataset) == 1
    place = f"value[{index}]" if single else f"page {page + 1} value[{index}]"
    path = snap.files.get(dataset)
    return InputError(exc.message, path=path, field=place if path else f"{dataset} {place}", fix=exc.fix)


def _of_fact(exc: ColumnError, snap: CollectedSnapshot) -> tuple[str, int, int] | None:
    if exc.column not in _FACT_COLUMNS:
        return None
    for fact in snap.facts:
        if fact.element is not None and type(getattr(fact, exc.column)) is type(exc.value) \
                and getattr(fact, exc.column) == exc.value:
            return fact.element
    return None


def _in_text(value: object, snap: CollectedSnapshot, datasets: set[str] | None) -> tuple[str, int, int] | None:
    """The first element, of `datasets` (None: any), holding `value` as a JSON string (its page's text holds it as
    written, then its elements are looked through, whatever the page's layout)."""
    if type(value) is not str or not value:
        return None
    wanted = [value] + ([value.rsplit(":", 1)[0]] if ":" in value else [])  # a role request's `<id>:<status>`
    needles = list(dict.fromkeys(json.dumps(v, ensure_ascii=ascii_) for v in wanted for ascii_ in (True, False)))
    for page in snap.pages:
        if datasets is not None and page.dataset not in datasets:
            continue
        text = page.decoded()
        if not any(needle in text for needle in needles):
            continue
        try:
            elements = json.loads(text).get("value")
        except (ValueError, AttributeError, RecursionError):
            continue
        for index, element in enumerate(elements if isinstance(elements, list) else ()):
            if any(_holds(element, v) for v in wanted):
                return page.dataset, page.index, index
    return None


def _holds(node: object, value: str) -> bool:
    """Whether `node` (decoded JSON) is `value` or holds it as a member's value or an item."""
    if type(node) is str:
        return node == value
    if isinstance(node, dict):
        return any(_holds(v, value) for v in node.values())
    if isinstance(node, list):
        return any(_holds(v, value) for v in node)
    return False
