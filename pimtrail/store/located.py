"""Where in the export an identifier the ingest refused came from (`columns.ColumnError`: too long for its column,
holding NUL, not text): only the ingest's column checks find those, after the reader, so their error named a table
and column ("fact.key holds a NUL character"), not the file and element to fix. Now it names them as the reader
names an element (`collectors.normalize.base.Item.where`): `users.json: value[3]: fact.key holds ...`.

A fact names the element it was normalised from (`FactRecord.element`). An event does not (its record is kept
small: 180,000 of a large tenant's), so its element is the first of its dataset's whose member the column is copied
from holds the value (`_EVENT_MEMBERS`: an audit entry's `id`, its targets' ids; a role request's `id` for its
`<id>:<status>`). Only on the error's path: nothing is looked up otherwise. Where the element is not known for sure
(a fact from several elements, a value found elsewhere only), the error stays as it was: better no place than a
wrong one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pimtrail.collectors.normalize.base import place
from pimtrail.errors import InputError

if TYPE_CHECKING:
    from pimtrail.model import CollectedSnapshot
    from pimtrail.store.columns import ColumnError

# where an event's columns are copied from, by the dataset it is normalised from (`collectors.normalize`): the
# members of an element, "*" any item of a list
_EVENT_MEMBERS: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {
    "directory_audits": {"source_id": (("id",),), "correlation_id": (("correlationId",),),
                         "principal_id": (("targetResources", "*", "id"),),
                         "role_id": (("targetResources", "*", "id"),)},
    "role_assignment_requests": {"source_id": (("id",),), "principal_id": (("principalId",),),
                                 "role_id": (("roleDefinitionId",),)},
}
_FACT_COLUMNS = ("key", "principal_id", "role_id", "group_id")  # FactRecord's attributes of those names


def located(exc: ColumnError, snap: CollectedSnapshot) -> InputError:
    """`exc` naming the file and element its value came from, when known (a fact's or an event's column); else `exc`
    itself."""
    if exc.table == "fact":
        element = _of_fact(exc, snap)
    elif exc.table == "event":
        element = _of_event(exc, snap)
    else:
        return exc
    if element is None:
        return exc
    dataset, page, index = element
    where = place(page, index, sum(1 for p in snap.pages if p.dataset == dataset) == 1)  # as `Item.where` names it
    path = snap.files.get(dataset)
    return InputError(exc.message, path=path, field=where if path else f"{dataset} {where}", fix=exc.fix)


def _of_fact(exc: ColumnError, snap: CollectedSnapshot) -> tuple[str, int, int] | None:
    if exc.column not in _FACT_COLUMNS:
        return None
    for fact in snap.facts:
        if fact.element is not None and type(getattr(fact, exc.column)) is type(exc.value) \
                and getattr(fact, exc.column) == exc.value:
            return fact.element
    return None


def _of_event(exc: ColumnError, snap: CollectedSnapshot) -> tuple[str, int, int] | None:
    """The first element of an event dataset whose member the column is copied from holds the refused value (its
    page's text holding it as JSON writes it, then its elements decoded)."""
    value = exc.value
    if type(value) is not str or not value:
        return None
    for page in snap.pages:
        paths = _EVENT_MEMBERS.get(page.dataset, {}).get(exc.column)
        if not paths:
            continue
        wanted = value.rsplit(":", 1)[0] if page.dataset == "role_assignment_requests" and exc.column == "source_id" \
            else value  # a role request's event is `<id>:<status>`
        text = page.decoded()
        if json.dumps(wanted) not in text and json.dumps(wanted, ensure_ascii=False) not in text:
            continue
        try:
            elements = json.loads(text).get("value")
        except (ValueError, AttributeError, RecursionError):
            continue
        for index, element in enumerate(elements if isinstance(elements, list) else ()):
            if any(wanted in _members(element, path) for path in paths):
                return page.dataset, page.index, index
    return None


def _members(node: object, path: tuple[str, ...]) -> list[object]:
    """The values at `path` in `node` ("*": each item of a list), without recursion."""
    found = [node]
    for step in path:
        if step == "*":
            found = [item for n in found if isinstance(n, list) for item in n]
        else:
            found = [n[step] for n in found if isinstance(n, dict) and step in n]
    return found
