"""What a page's text says without parsing it: its `@odata.nextLink`, and the ids it holds.

Graph writes a page as `{"@odata.context": ..., "@odata.nextLink": ..., "value": [...]}`, the
nextLink before or after `value`. Its members other than `value` are short scalars, so they are
read with a few anchored regular expressions from the start of the text and, when the nextLink
is not among them, from the end; the items in `value` are never decoded. Whatever does not have
that shape raises `Unclear`, and the caller parses the page instead. Imported by the HTTP client
too (for a page whose head is still arriving), so this module imports nothing of the SDK.
"""

from __future__ import annotations

import json
import re

NEXT_LINK = "@odata.nextLink"

_WS = rb"[ \t\n\r]*"
_STRING = rb'"(?:[^"\\]|\\.)*+"'
_SCALAR = _STRING + rb"|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?|true|false|null"
_MEMBER = re.compile(_WS + rb"(" + _STRING + rb")" + _WS + rb":" + _WS)  # a key and its colon
_VALUE = re.compile(rb"(" + _SCALAR + rb")" + _WS)  # a scalar member value
_AFTER = re.compile(_WS + rb"(?:,|(\}))")  # what follows a member: another one, or the end
_COLON = re.compile(_WS + rb":" + _WS)
_KEY = b'"' + NEXT_LINK.encode() + b'"'
_TAIL_TRIES = 4  # occurrences of the key checked from the end before parsing the page instead


class Unclear(Exception):
    """The page is not laid out as expected: parse it instead."""


def _link(token: bytes) -> str | None:
    value = json.loads(token)
    if value is not None and not isinstance(value, str):
        raise Unclear
    return value or None


def front(raw: bytes) -> tuple[str | None, int]:
    """Read the top-level members before `value` (annotations: short scalars). Returns the
    nextLink if one of them is it, and where `value`'s array starts."""
    i = len(raw) - len(raw.lstrip())
    if raw[i:i + 1] != b"{":
        raise Unclear  # a BOM, another encoding, not an object: json.loads decides
    i += 1
    link = None
    while True:
        member = _MEMBER.match(raw, i)
        if member is None:
            raise Unclear  # e.g. `{}`: no `value` at all
        key, i = member.group(1), member.end()
        if key == b'"value"':
            if raw[i:i + 1] != b"[":
                raise Unclear
            return link, i
        value = _VALUE.match(raw, i)
        after = _AFTER.match(raw, value.end()) if value else None
        if value is None or after is None or after.group(1):
            raise Unclear  # an object or array member, or `value` missing
        if key == _KEY:
            link = _link(value.group(1))
        i = after.end()


def _tail(raw: bytes, at: int) -> str | None:
    """The nextLink if the key found at `at` is a member of the outermost object: preceded by
    a comma, and followed by scalar members only up to the body's closing brace. (A key inside
    an item, or text inside a string, cannot be: a string's quotes are escaped, and an item's
    members are followed by its own closing brace and the array's bracket.)"""
    before = raw[:at].rstrip()
    if not before.endswith(b","):
        raise Unclear
    i = at + len(_KEY)
    colon = _COLON.match(raw, i)
    value = _VALUE.match(raw, colon.end()) if colon else None
    if value is None:
        raise Unclear
    link, i = _link(value.group(1)), value.end()
    while True:
        after = _AFTER.match(raw, i)
        if after is None:
            raise Unclear
        if after.group(1):  # the closing brace: it must end the body
            if raw[after.end():].strip():
                raise Unclear
            return link
        member = _MEMBER.match(raw, after.end())
        value = _VALUE.match(raw, member.end()) if member else None
        if value is None:
            raise Unclear
        i = value.end()


def next_link(raw: bytes) -> str | None:
    """The page's `@odata.nextLink` without parsing its `value`: from the members before
    `value`, else from the end of the body. Raises Unclear when the page does not have that
    shape (the caller parses it)."""
    link, start = front(raw)
    if not raw.rstrip().endswith(b"}"):
        raise Unclear  # cut short?
    if link is not None:
        return link
    at = len(raw)
    for _ in range(_TAIL_TRIES):
        at = raw.rfind(_KEY, start, at)
        if at < 0:
            return None  # the key is nowhere after `value`: the last page
        if raw[at - 1:at] != b"\\":  # an escaped quote is text inside a string
            return _tail(raw, at)
    raise Unclear


_ID = re.compile(rb'"id"' + _WS + rb":" + _WS + rb'"([^"\\]*)"')




def ids(raw: bytes) -> list[str]:
    """The value of every `"id"` member in the page, at any depth (a superset of its objects' ids)."""
    return [found.decode("utf-8", "replace") for found in _ID.findall(raw)]


def ids_of_upns(raw: bytes, upns: set[str]) -> list[str]:
    """The ids of the users in a users page whose userPrincipalName is one of `upns` (lower case; letter case
    is ignored, as Entra does). The page is parsed only when one of them occurs in its text: the configured
    break-glass accounts are a few users among 100,000."""
    lowered = raw.lower()
    if not any(upn.encode() in lowered for upn in upns):
        return []
    body = json.loads(raw)
    return [str(item["id"]) for item in body.get("value", []) if isinstance(item, dict) and item.get("id")
            and str(item.get("userPrincipalName") or "").lower() in upns]
