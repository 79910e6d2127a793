"""Elements of Graph's shape decoded straight into typed objects (msgspec), not into dicts.

The export reader offers each element of a dataset that has a typed decoder (`exportdir._TYPED`) to it first
(`collectors.elementjson.Elements`); what it takes stands in the page for the element's dict, and the dataset's
normaliser reads it by attribute. Creating the dicts of a large tenant's first export (180,000 audit entries,
100,000 users, as many registration rows, 20,748 review decisions) and reading them through `Item`'s checked getters
was most of what reading them cost (docs/benchmarks.md, "First ingest, round 21").

A decoder takes an element only where the dict path gives the same record, so that the two paths never differ:
- **Every property Graph gives, and no other** (`forbid_unknown_fields`): an element with a property the type does
  not name (a newer Graph's, an export's own) goes the dict path. So nothing in a taken element is skipped unread:
  JSON that is not JSON, or numbers out of range, anywhere in it, are refused as the dict path refuses them.
- **Each value of Graph's type, or null**: text, true/false, lists of texts, nested objects of their own types.
  No property is a number, so no number is ever read here (the dict path's float and integer rules stay its
  own); a value of another type (a number for a text, an object for a list) goes the dict path, which says
  what is wrong with it where it is wrong.
- **What the normaliser checks beyond types** (a non-empty id, a real moment) is checked by the decoder's
  `vouch`, which also writes moments in their canonical form; an element it does not vouch for goes the dict
  path, which raises.
- msgspec's parser takes the same JSON as the stdlib's (strict: no NaN, no control characters in strings, no
  trailing commas; duplicate keys: the last one, as a dict) and refuses what it cannot hold (a lone surrogate,
  nesting past its depth): those elements go the dict path too.
tests/test_typed_elements.py holds each typed normaliser to its dict path on random elements.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Callable, Optional, TypeVar

import msgspec

from .base import canonical_time

Text = Optional[str]
Flag = Optional[bool]
Texts = Optional[list[str]]
T = TypeVar("T")


class Typed(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A Graph object's type: its properties, each of Graph's type or null (`Text`, `Flag`, `Texts`, another
    `Typed`), and no others. Not tracked by the garbage collector: they hold texts and each other, no cycles."""

    odata_type: Text = msgspec.field(default=None, name="@odata.type")


def decoder(kind: type[T], vouch: Callable[[T], bool]) -> Callable[[bytes | memoryview], T | None]:
    """The decoder of `kind` for `collectors.elementjson.Elements`: an element's JSON text (UTF-8) -> its typed
    object, or None where the dict path is to read it (another shape, or one `vouch` does not vouch for). Its `many`
    decodes a whole array's text at once: the list of them when every element is one the decoder takes, else None
    (each is then offered alone)."""
    decode = msgspec.json.Decoder(kind).decode
    decode_many = msgspec.json.Decoder(list[kind]).decode  # type: ignore[valid-type]

    def typed(raw: bytes | memoryview) -> T | None:
        try:
            value = decode(raw)
        except (msgspec.MsgspecError, RecursionError):  # not JSON as the stdlib reads it, or another shape
            return None
        return value if vouch(value) else None

    def many(raw: bytes | memoryview) -> list[T] | None:
        try:
            values = decode_many(raw)
        except (msgspec.MsgspecError, RecursionError):
            return None
        return values if all(map(vouch, values)) else None

    typed.many = many  # type: ignore[attr-defined]
    return typed


def vouched(*moments: str, also: Callable[[T], bool] | None = None) -> Callable[[T], bool]:
    """The usual `vouch` of a decoder: a non-empty `id`, each property in `moments` a real moment or null (then
    written in its canonical form, as `Item.when` gives it), and what `also` checks. One moment or none, and no
    `also` (audit entries, users, registration rows: 460,000 of a large tenant's), without the loops (~0.4 us)."""
    if also is None and len(moments) <= 1:
        return _vouch_one(moments[0]) if moments else _vouch_id

    def vouch(value: T) -> bool:
        if not value.id:  # type: ignore[attr-defined]
            return False
        found = [moment(getattr(value, name)) for name in moments]
        if False in found or also is not None and not also(value):
            return False
        for name, when in zip(moments, found):
            setattr(value, name, when)
        return True

    return vouch


def _vouch_id(value: Any) -> bool:
    return bool(value.id)


def _vouch_one(name: str) -> Callable[[Any], bool]:
    """`vouched(name)`."""
    read = attrgetter(name)

    def vouch(value: Any) -> bool:
        if not value.id:
            return False
        when = read(value)
        if when is not None:
            try:
                setattr(value, name, canonical_time(when))
            except (ValueError, TypeError):
                return False
        return True

    return vouch


def moment(value: str | None) -> str | None | bool:
    """A moment as `Item.when` gives it (`canonical_time`), None for None, or False where `when` would raise."""
    if value is None:
        return None
    try:
        return canonical_time(value)
    except (ValueError, TypeError):
        return False


class UserIdentity(Typed):
    """Graph's userIdentity (an access review's reviewer or principal; an audit entry's actor extends it)."""

    id: Text = None
    displayName: Text = None
    userPrincipalName: Text = None
    ipAddress: Text = None
