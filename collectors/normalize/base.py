"""Shared helpers for turning Graph items into facts: iteration with locations, typed field access.

Every error names the file and the item/field it came from, so a user can fix the export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Callable, Iterator, TypeVar

from msgspec import Struct

from pimtrail.errors import InputError
from pimtrail.model import SKIPPED, FactRecord
from pimtrail.timeutil import iso, parse_iso

# Graph's timestamps: `2026-07-14T01:27:38Z`, often with up to 7 fractional digits before the Z
_UTC = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d{1,7})?Z")
_UTC_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")  # the form returned as it is
_DAYS: set[str] = set()  # `YYYY-MM-DD` texts found to be real days (a tenant's data names a few thousand)


def canonical_time(value: Any) -> str:
    """An ISO timestamp as `YYYY-MM-DDTHH:MM:SSZ` (UTC, fractions dropped, as `iso(parse_iso(value))`).
    Graph's own UTC form is only checked to be a real moment, not parsed and re-formatted: in the form returned as
    it is, its day once (`_DAYS`) and its time by comparing digits (1.4 -> 0.4 us; 370,000 of a large tenant's).
    Raises ValueError/TypeError."""
    if type(value) is str and len(value) == 20 and _UTC_SECONDS.fullmatch(value):
        day = value[:10]
        if day not in _DAYS:
            datetime(int(value[:4]), int(value[5:7]), int(value[8:10]))  # raises ValueError for 2026-02-30
            if len(_DAYS) < 100_000:
                _DAYS.add(day)
        if value[11:13] > "23" or value[14:16] > "59" or value[17:19] > "59":  # two digits each: as numbers
            raise ValueError(f"not a time of day: {value!r}")
        return value
    match = _UTC.fullmatch(value) if type(value) is str else None
    if match:
        datetime(*map(int, match.groups()))  # raises ValueError for 2026-02-30 or 25:00
        return value if len(value) == 20 else value[:19] + "Z"
    return iso(parse_iso(value))


T = TypeVar("T")
# What code reading a Graph element raises on a value of another shape than Graph's: a list where Graph gives an
# object, a number for a text, an object for a duration
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, ValueError, IndexError)
SHAPE_FIX = "each element must have the shape Graph returns (docs/export-format.md); re-export the dataset"


def _guarded(build: Callable[..., T], source: "DatasetPages | Item", args: tuple) -> T:
    """`build(source, *args)`: a value of another shape than Graph's raises InputError naming the file and the
    element (the item, or the one its pages gave last), not a traceback; the cause is kept (a bug of ours shows
    in it). Called once an element as the store builds it: no closure is made for the error that rarely comes."""
    try:
        return build(source, *args)
    except InputError:
        raise
    except SHAPE_ERRORS as exc:
        item = source.current if isinstance(source, DatasetPages) else source
        raise InputError(f"unexpected value ({type(exc).__name__}: {exc})", path=source.file,
                         field=item.where if item is not None else None, fix=SHAPE_FIX) from exc


@dataclass
class RawPage:
    parent: str
    request: str
    body: dict[str, Any]


@dataclass
class DatasetPages:
    """The pages of one dataset as read from an export file (or from Graph)."""

    name: str
    file: str
    pages: list[RawPage] = field(default_factory=list)
    current: "Item | None" = field(default=None, repr=False, compare=False)  # the item `items` gave last

    def items(self) -> Iterator["Item"]:
        single = len(self.pages) == 1
        for page_no, page in enumerate(self.pages):
            for index, value in enumerate(page.body.get("value", [])):
                if value is SKIPPED:  # recognised unparsed: its facts are the ones the history holds
                    continue
                item = self.current = Item(self.file, page.parent, value, page_no, index, single, self.name)
                if not isinstance(value, (dict, Struct)):  # a Struct: decoded typed (`exportdir._TYPED`)
                    raise InputError("expected an object", path=self.file, field=item.where,
                                     fix="each entry of 'value' is one Graph object")
                yield item

    def normalised(self, build: Callable[..., T], *args: Any) -> T:
        """`build(self, *args)`, a dataset's normaliser: a value of another shape than Graph's raises InputError
        naming the file and the element it was reading (`current`), not a traceback."""
        return _guarded(build, self, args)

    @property
    def rows(self) -> int:
        return sum(len(p.body.get("value", [])) for p in self.pages)


@dataclass(slots=True)
class Item:
    file: str
    parent: str
    data: dict[str, Any]
    page_no: int = 0
    index: int = 0
    single_page: bool = True
    dataset: str = ""

    @property
    def origin(self) -> tuple[str, int, int]:
        """(dataset, page, index): which raw element this is (`FactRecord.element`)."""
        return self.dataset, self.page_no, self.index

    @property
    def where(self) -> str:
        """The item's place in its file, for error messages (built only when one is raised)."""
        return place(self.page_no, self.index, self.single_page)

    def error(self, name: str, message: str, fix: str | None = None) -> InputError:
        return InputError(message, path=self.file, field=f"{self.where}.{name}", fix=fix)

    def built(self, build: Callable[..., T], *args: Any) -> T:
        """`build(self, *args)`, normalising this element when the store first asks for it (`FactRecord`,
        `EventRecord`): a value of another shape than Graph's raises InputError naming the element."""
        return _guarded(build, self, args)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.data.get(name, default)
        return default if value is None else value

    def required(self, name: str) -> str:
        """A text field Graph always gives (ids, names): missing, empty or not text raises InputError."""
        value = self.data.get(name)
        if value is None or value == "":
            raise self.error(name, "missing", fix="Graph always returns this field; re-export the dataset")
        if type(value) is not str:
            raise self.error(name, f"expected text, found {type(value).__name__}")
        return value

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(name, f"expected text, found {type(value).__name__}")
        return value

    def text_in(self, data: dict[str, Any], name: str, field: str) -> str | None:
        """`data[name]`, of an object nested in the element (`field`: where, for the error), when it is text or
        absent; else InputError (stored as it is, another type would break the readers of the history)."""
        return self.typed_in(data, name, field, str)

    def typed_in(self, data: dict[str, Any], name: str, field: str, kind: type) -> Any:
        """`text_in` for values of `kind` (str, bool or int; a bool is not an int here)."""
        value = data.get(name)
        if value is None or type(value) is kind:
            return value
        expected = {str: "text", bool: "true/false", int: "a whole number"}.get(kind, kind.__name__)
        raise self.error(field, f"expected {expected}, found {type(value).__name__}")

    def flag(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None or isinstance(value, bool):
            return value
        raise self.error(name, f"expected true/false, found {quoted(value)}")

    def when(self, name: str, data: dict[str, Any] | None = None) -> str | None:
        """An ISO timestamp field, normalised to `YYYY-MM-DDTHH:MM:SSZ`; None stays None."""
        value = (self.data if data is None else data).get(name)
        if value is None:
            return None
        try:
            return canonical_time(value)
        except (ValueError, TypeError):
            raise self.error(name, f"not a date-time: {quoted(value)}",
                             fix="use ISO 8601 with a zone, e.g. 2026-07-14T01:27:00Z") from None


def place(page_no: int, index: int, single_page: bool) -> str:
    """Where an element lies in its file, as errors name it: `value[3]`, or `page 2 value[3]` in a file of pages."""
    return f"value[{index}]" if single_page else f"page {page_no + 1} value[{index}]"


def quoted(value: Any) -> str:
    """A value from the tenant as an error message shows it: its repr, cut to 80 characters (a 100 kB value made a
    100 kB line)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_ODATA_TYPES = {"user": "user", "group": "group", "servicePrincipal": "service_principal", "device": "device",
                "orgContact": "contact", "userIdentity": "user", "groupIdentity": "group",
                "servicePrincipalIdentity": "service_principal"}


def odata_type(obj: dict[str, Any] | None) -> str | None:
    """`#microsoft.graph.servicePrincipal` -> `service_principal`."""
    if not obj:
        return None
    return odata_name(obj.get("@odata.type"))


def odata_name(odata: str | None) -> str | None:
    """`odata_type` of an object whose `@odata.type` is `odata`."""
    raw = (odata or "").rsplit(".", 1)[-1]
    return _ODATA_TYPES.get(raw, raw or None)


def iso_duration_hours(value: str | None) -> float | None:
    """ISO-8601 duration (`PT8H`, `PT30M`, `P1D`, `P365D`) -> hours; None for none/unparseable."""
    if not value or not value.startswith("P"):
        return None
    import re

    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", value)
    if not match:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return days * 24 + hours + minutes / 60 + seconds / 3600


def per_user(pages: "DatasetPages", kind: str, build: Callable[["Item", str], dict[str, Any]],
             typed: tuple[type, Callable[[Any], dict[str, Any]]] | None = None) -> list[FactRecord]:
    """One fact of `kind` per element of a per-user dataset, keyed by the user's id and naming its element,
    built (`build(item, user id)`) when first used: the store builds changed elements' facts only. `typed`: the
    dataset's typed object and the same `build` of it (`collectors.normalize.typed`), for the elements decoded so."""
    facts = []
    kind_of, typed_build = typed if typed is not None else (None, None)
    for item in pages.items():
        data = item.data
        if type(data) is kind_of:  # its id vouched for (`typed.decoder`)
            facts.append(FactRecord(kind, data.id, principal_id=data.id, element=item.origin,
                                    build=partial(typed_build, data), textual=True))  # type: ignore[arg-type]
            continue
        user_id = item.required("id")
        facts.append(FactRecord(kind, user_id, principal_id=user_id, element=item.origin,
                                build=lambda item=item, user_id=user_id: item.built(build, user_id)))
    return facts
